"""backbone.precision: CPU bf16 detection, auto resolution, refusal, and bf16-vs-fp32 agreement."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.features import precision as P

NO_BF16 = P.CpuBf16(False, (), "/proc/cpuinfo (test)")
WITH_AMX = P.CpuBf16(True, ("amx_bf16", "amx_tile", "avx512_bf16"), "/proc/cpuinfo (test)")
needs_bf16 = pytest.mark.skipif(not P.cpu_bf16_support().supported,
                                reason="this CPU has no native bf16 (AMX / AVX-512-BF16)")


def _load(prec: str):
    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("vadlib-tiny", "random", precision=prec)


def test_cpuinfo_flags_are_read_not_assumed(tmp_path, monkeypatch):
    f = tmp_path / "cpuinfo"
    monkeypatch.setattr(P, "CPUINFO", f)
    for text, supported, flags in [
        ("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n", False, ()),
        ("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n", True,
         ("amx_bf16", "amx_tile", "avx512_bf16")),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16\n", True, ("bf16",)),
    ]:
        f.write_text(text)
        P.cpu_bf16_support.cache_clear()
        got = P.cpu_bf16_support()
        assert (got.supported, got.flags, got.source) == (supported, flags, str(f))
    P.cpu_bf16_support.cache_clear()


def test_resolution_on_cpus_with_and_without_bf16(monkeypatch, caplog):
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: WITH_AMX)
    r = P.resolve_precision("auto", "cpu")
    assert r.name == "bf16" and r.dtype == torch.bfloat16 and "amx_bf16" in r.reason
    assert P.resolve_precision("bf16").name == "bf16"
    assert P.resolve_precision("fp32").name == "fp32"
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: NO_BF16)
    with caplog.at_level(logging.WARNING, logger="vadlib.features.precision"):
        r = P.resolve_precision("auto", "cpu")
    assert r.name == "fp32" and "fell back to fp32" in r.reason and "AVX-512-BF16" in r.reason
    assert "fell back to fp32" in caplog.text  # the fallback is said in the log ...
    assert r.protocol() == {"precision": "fp32", "precision_requested": "auto", "precision_reason": r.reason}
    with pytest.raises(ConfigError, match="bf16 refused.*neither AMX nor AVX-512-BF16.*fp32 or auto"):
        P.resolve_precision("bf16", "cpu")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        P.resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        P.resolve_precision("fp8", "cpu")


def test_load_backbone_refuses_bf16_and_records_the_auto_fallback(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: NO_BF16)
    with pytest.raises(ConfigError, match="backbone.precision bf16 refused"):
        _load("bf16")
    bb = _load("auto")
    assert bb.precision == "fp32" and bb.dtype == torch.float32
    proto = bb.precision_protocol()  # ... and in the protocol / store index
    assert proto["precision"] == "fp32" and proto["precision_requested"] == "auto"
    assert "fell back to fp32" in proto["precision_reason"]


def test_auto_fallback_is_recorded_in_the_store_index(monkeypatch, toy_dataset, tmp_path):
    from vadlib.features.extract import ExtractConfig, extract_dataset

    monkeypatch.setattr(P, "cpu_bf16_support", lambda: NO_BF16)
    bb = _load("auto")
    store = extract_dataset(toy_dataset, bb, tmp_path, ExtractConfig(sampling="every", stride=4, progress=False))
    assert store.info["precision"] == "fp32" and "fell back to fp32" in store.info["precision_reason"]


@needs_bf16
def test_bf16_backbone_agrees_with_fp32_per_frame(toy_dataset, tmp_path):
    """Per-frame cosine >= 0.999 of bf16 features (weights cast) to fp32 ones; own store; float32 out."""
    from vadlib.features.extract import ExtractConfig, extract_dataset

    fp32, bf16 = _load("fp32"), _load("bf16")
    assert bf16.dtype == torch.bfloat16 and bf16.precision == "bf16"
    cfg = ExtractConfig(sampling="every", stride=2, progress=False)
    a_store = extract_dataset(toy_dataset, fp32, tmp_path, cfg)
    b_store = extract_dataset(toy_dataset, bf16, tmp_path, cfg)
    assert a_store.path != b_store.path and b_store.info["precision"] == "bf16" and "__bf16__" in b_store.path.name
    for v in a_store.videos():
        a, b = a_store.load(v), b_store.load(v)
        assert b.dtype == np.float32 and a.shape == b.shape and not np.array_equal(a, b)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() >= 0.999, (v, cos.min())
    ta, tb = fp32.encode_text(["a person running"]), bf16.encode_text(["a person running"])
    assert tb.dtype == torch.float32 and float((ta * tb).sum()) >= 0.999
    assert next(bf16.model.transformer.parameters()).dtype == torch.float32  # text tower stays fp32
    x = torch.randn(3, 3, fp32.image_size, fp32.image_size)
    ia, ib = fp32.encode_images(x), bf16.encode_images(x)
    assert ib.dtype == torch.float32 and torch.nn.functional.cosine_similarity(ia, ib).min() >= 0.999


def test_extract_config_precision_over_a_cast_backbone_is_refused(monkeypatch, toy_dataset, tmp_path):
    from vadlib.features.extract import ExtractConfig, effective_precision

    monkeypatch.setattr(P, "cpu_bf16_support", lambda: WITH_AMX)
    bb = _load("bf16")
    assert effective_precision(bb, ExtractConfig()) == "bf16"
    with pytest.raises(ConfigError, match="load the backbone with precision='fp32'"):
        effective_precision(bb, ExtractConfig(precision="fp32"))


def test_store_rejects_unresolved_auto(tmp_path):
    from vadlib.features.store import store_dir

    info = {"dataset": "toy", "backbone": "vadlib-tiny", "pretrained": "random", "sampling": "every", "stride": 2,
            "crops": 1, "precision": "auto"}
    with pytest.raises(ConfigError, match="precision 'auto'"):
        store_dir(tmp_path, "toy", info)
    assert "__bf16__" in store_dir(tmp_path, "toy", {**info, "precision": "bf16"}).name
    assert "__bf16" not in store_dir(tmp_path, "toy", {**info, "precision": "fp32"}).name


def test_fused_attention_matches_the_native_path_and_keeps_the_state_dict():
    """SDPA self-attention (load_backbone's default) gives the native MHA path's features (fp32, tiny),
    keeps the weights / state dict, and can be switched off; masked or weighted calls keep the original."""
    bb = _load("fp32")
    vis = bb.model.visual
    keys = list(vis.state_dict())
    x = torch.randn(4, 3, bb.image_size, bb.image_size)
    with torch.inference_mode():
        fused = vis(x)
        assert P.fused_attention(vis, enable=False) > 0
        native = vis(x)
    assert torch.allclose(fused, native, atol=1e-5, rtol=1e-4)
    assert list(vis.state_dict()) == keys
    mha = next(m for m in vis.modules() if isinstance(m, torch.nn.MultiheadAttention))
    assert "forward" not in mha.__dict__
    P.fused_attention(vis)
    q = torch.randn(2, 5, mha.embed_dim)
    out, w = mha(q, q, q, need_weights=True)                       # weights asked: the original path
    assert w is not None and out.shape == q.shape
    mha.train()                                                    # training with grad also goes through SDPA
    q.requires_grad_(True)
    mha(q, q, q, need_weights=False)[0].sum().backward()
    assert q.grad is not None and mha.in_proj_weight.grad is None  # frozen tower: no weight grads


@needs_bf16
def test_glow_under_bf16_autocast_agrees_with_fp32():
    """Glow fitted and scored under bf16 autocast (what bench glow times): log-likelihoods close to fp32
    ones on the same data and seed (the flow stage stays fp32: the bench found no speed gain)."""
    from vadlib.methods.flow_nf.glow import GlowDensity

    rng = np.random.default_rng(0)
    train = rng.normal(0, 0.3, (400, 2, 4, 4)).astype(np.float32)
    test = np.concatenate([rng.normal(0, 0.3, (50, 2, 4, 4)), rng.normal(0, 1.5, (50, 2, 4, 4))]).astype(np.float32)
    kw = dict(K=2, hidden=16, epochs=4, batch_size=64, seed=0)
    a = GlowDensity(**kw).fit(train).score_samples(test)
    with torch.autocast("cpu", torch.bfloat16):
        b = GlowDensity(**kw).fit(train).score_samples(test)
    assert np.all(np.isfinite(b)) and not np.array_equal(a, b)
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert np.abs(a[:50] - b[:50]).mean() < 0.02                # in distribution: the same nats/dim
    assert b[:50].min() > b[50:].max() and a[:50].min() > a[50:].max()  # both rank in above out
