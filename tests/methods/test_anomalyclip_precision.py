"""AnomalyCLIPConfig.precision (issue 15): the temporal model under bf16 autocast agrees with fp32 and
trains; bf16 is refused on a CPU without bf16 units, and auto falls back to fp32 there."""

from __future__ import annotations

import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.features import precision as P

NO_BF16 = P.CpuBf16(False, (), "/proc/cpuinfo (test)")
needs_bf16 = pytest.mark.skipif(not P.cpu_bf16_support().supported,
                                reason="this CPU has no native bf16 (AMX / AVX-512-BF16)")


@needs_bf16
def test_anomalyclip_bf16_forward_agrees_and_trains():
    """AnomalyCLIPConfig.precision bf16: the temporal model under autocast, fp32 outputs close to fp32's."""
    from vadlib.methods.anomalyclip import model as ac

    torch.manual_seed(0)
    names = ["normal", "a", "b"]
    emb = torch.randn(2, 32)
    m32 = ac.AnomalyCLIP(ac.anomalyclip_config("demo", text_source="embeddings"), names, 32, ac.EmbeddingText(emb))
    m16 = ac.AnomalyCLIP(ac.anomalyclip_config("demo", text_source="embeddings", precision="bf16"), names, 32,
                         ac.EmbeddingText(emb))
    m16.load_state_dict(m32.state_dict())
    assert (m32.precision, m16.precision) == ("fp32", "bf16")
    m32.eval(), m16.eval()
    x = torch.randn(3, 16 * 8, 32)
    a, b = m32(x), m16(x)
    assert b["logit"].dtype == torch.float32 and b["log_probs"].dtype == torch.float32
    assert not torch.equal(a["logit"], b["logit"])  # bf16 really ran
    assert torch.allclose(torch.sigmoid(a["logit"]), torch.sigmoid(b["logit"]), atol=0.03)
    m16.train()
    out = m16(x)
    loss = ac.anomalyclip_loss(out, torch.tensor([1, 2, 0]), m16.cfg, torch.Generator().manual_seed(0))[0]
    loss.backward()
    grads = [p.grad for p in m16.temporal.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_anomalyclip_bf16_refused_without_bf16_units(monkeypatch):
    from vadlib.methods.anomalyclip import model as ac

    monkeypatch.setattr(P, "cpu_bf16_support", lambda: NO_BF16)
    cfg = ac.anomalyclip_config("demo", text_source="embeddings", precision="bf16")
    with pytest.raises(ConfigError, match="bf16 refused"):
        ac.AnomalyCLIP(cfg, ["normal", "a"], 8, ac.EmbeddingText(torch.randn(1, 8)))
    auto = ac.AnomalyCLIP(ac.anomalyclip_config("demo", text_source="embeddings", precision="auto"), ["normal", "a"],
                          8, ac.EmbeddingText(torch.randn(1, 8)))
    assert auto.precision == "fp32"
