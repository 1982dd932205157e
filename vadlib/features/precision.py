"""Numeric precision of the CLIP encoder: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (CUDA only).

bfloat16 is fast on CPUs with bf16 units (Intel AMX ``amx_bf16``, AVX-512-BF16 ``avx512_bf16``
on Intel Cooper Lake+ / AMD Zen 4+, Arm ``bf16``): matrix products run 2–4× faster than fp32.
On a CPU without them PyTorch emulates bf16 and is *slower* than fp32, so vadlib never assumes
the units are there: :func:`cpu_bf16_support` reads the CPU flags (``/proc/cpuinfo``, else
PyTorch's own cpuinfo probes) and

* ``auto`` resolves to ``bf16`` where the CPU reports AMX or AVX-512-BF16 (or Arm bf16), to
  ``fp16`` on CUDA, and to ``fp32`` elsewhere — the fallback is logged and recorded
  (:attr:`Precision.reason`, written into the feature store index and metrics protocols);
* ``bf16`` on a CPU without bf16 units is refused with :class:`~vadlib.errors.ConfigError`;
* ``fp16`` is refused off CUDA (CPU fp16 matmul is emulated).

How the precision is applied is :func:`vadlib.features.backbones.load_backbone`'s job: the
profiler showed that casting the module's weights (``model.to(torch.bfloat16)``) is the fast
path for open_clip ViTs; ``torch.autocast`` re-casts weights on every call and spends most of
the time in ``aten::copy_`` around attention (slower than fp32 on 2 cores).

:func:`fused_attention` routes the towers' ``nn.MultiheadAttention`` self-attention through
``F.scaled_dot_product_attention`` (one fused kernel instead of PyTorch's native MHA path of
bias-rescale, two ``bmm`` and a softmax); the extract bench measures it against the native path
(variants ``bf16`` vs ``bf16-mha``: a few per cent by CPU time on an AVX-512-BF16 EPYC, the features
unchanged). The other levers that bench tries (``torch.compile``, channels_last, one thread,
oneDNN fp32 math modes, autocast) gave nothing there (README "bf16 measured on this machine").
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vadlib.errors import ConfigError

log = logging.getLogger("vadlib.features.precision")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: CPU flags (``/proc/cpuinfo``) that mean native bf16 arithmetic
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuBf16:
    """What the CPU reports about bf16 units.

    Attributes:
        supported: the CPU has native bf16 arithmetic.
        flags: the bf16 flags found (``amx_bf16``, ``amx_tile``, ``avx512_bf16``, Arm ``bf16``).
        source: where they were read (``/proc/cpuinfo`` or ``torch cpuinfo``), or ``"unknown"``.
    """

    supported: bool
    flags: tuple[str, ...]
    source: str

    def describe(self) -> str:
        if self.supported:
            return f"CPU reports {', '.join(self.flags)} ({self.source})"
        cap = torch.backends.cpu.get_cpu_capability()
        return (f"CPU reports neither AMX nor AVX-512-BF16 ({self.source}; torch CPU capability {cap}); "
                "bf16 would be emulated there and slower than fp32")


def _cpuinfo_flags(text: str) -> set[str]:
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(val.split())
    return flags


@functools.lru_cache(maxsize=1)
def cpu_bf16_support() -> CpuBf16:
    """Detect native bf16 on this CPU (cached): ``/proc/cpuinfo`` flags on Linux, else PyTorch's
    cpuinfo probes (``torch._C._cpu._is_amx_tile_supported`` / ``_is_avx512_bf16_supported``)."""
    try:
        flags = _cpuinfo_flags(CPUINFO.read_text())
    except OSError:
        flags = set()
    if flags:
        found = tuple(f for f in ("amx_bf16", "amx_tile", "avx512_bf16", "bf16") if f in flags)
        return CpuBf16(any(f in flags for f in BF16_FLAGS), found, str(CPUINFO))
    probes = {"amx_tile": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    found = []
    for flag, fn in probes.items():
        probe = getattr(getattr(torch._C, "_cpu", None), fn, None)
        try:
            if probe is not None and probe():
                found.append(flag)
        except Exception:  # pragma: no cover - platform specific
            pass
    if not any(getattr(getattr(torch._C, "_cpu", None), fn, None) for fn in probes.values()):
        return CpuBf16(False, (), "unknown (no /proc/cpuinfo, no torch cpuinfo probes)")
    return CpuBf16(bool(found), tuple(found), "torch cpuinfo")


@dataclass(frozen=True)
class Precision:
    """A resolved precision.

    Attributes:
        requested: what was asked (``auto``, ``fp32``, ``bf16``, ``fp16``).
        name: what is used (``fp32``, ``bf16`` or ``fp16``).
        reason: why (the CPU flags found, or the fallback's cause).
    """

    requested: str
    name: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    def protocol(self) -> dict:
        """The entries a metrics protocol / store index records."""
        return {"precision": self.name, "precision_requested": self.requested, "precision_reason": self.reason}


def resolve_precision(requested: str = "auto", device: str | torch.device = "cpu") -> Precision:
    """``backbone.precision`` → the precision used on ``device``.

    Raises:
        ConfigError: unknown name; ``bf16`` on a CPU without bf16 units; ``fp16`` off CUDA.
    """
    req = str(requested or "auto").lower()
    if req not in PRECISIONS:
        raise ConfigError(f"backbone.precision: unknown precision '{requested}'; known: {', '.join(PRECISIONS)}")
    dev = torch.device(device)
    if req == "fp32":
        return Precision(req, "fp32", "requested")
    if dev.type == "cuda":
        if req == "auto":
            return Precision(req, "fp16", "auto on CUDA: fp16")
        if req == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"backbone.precision bf16: GPU {dev} has no bf16 support; use fp16 or fp32")
        return Precision(req, req, "requested")
    if req == "fp16":
        raise ConfigError(f"backbone.precision fp16 needs a CUDA device (device is '{dev}'): fp16 on a CPU is "
                          "emulated and slow; use bf16 (on CPUs with AMX / AVX-512-BF16), auto, or fp32")
    if dev.type != "cpu":
        if req == "auto":
            return Precision(req, "fp32", f"auto on device '{dev.type}': fp32")
        return Precision(req, req, "requested")
    cpu = cpu_bf16_support()
    if req == "bf16":
        if not cpu.supported:
            raise ConfigError(f"backbone.precision bf16 refused: {cpu.describe()}. Set backbone.precision to fp32 "
                              "or auto (-S backbone.precision=auto, or --precision auto).")
        return Precision(req, "bf16", cpu.describe())
    if cpu.supported:
        return Precision(req, "bf16", f"auto: {cpu.describe()}")
    reason = f"auto fell back to fp32: {cpu.describe()}"
    log.warning("backbone.precision %s", reason)
    return Precision(req, "fp32", reason)


def _sdpa_self_attention(self: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         key_padding_mask=None, need_weights: bool = True, attn_mask=None, **kw):
    """``nn.MultiheadAttention.forward`` for batch-first self-attention without masks or weights, as one
    ``F.scaled_dot_product_attention``: ``(B, L, D)`` → ``((B, L, D), None)``; any other call goes to
    the original forward."""
    if (need_weights or attn_mask is not None or key_padding_mask is not None or kw or key is not query
            or value is not query or query.dim() != 3 or self.in_proj_weight is None):
        return type(self).forward(self, query, key, value, key_padding_mask=key_padding_mask,
                                  need_weights=need_weights, attn_mask=attn_mask, **kw)
    b, n, d = query.shape
    h = self.num_heads
    qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
    drop = self.dropout if self.training else 0.0
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=drop)
    return F.linear(out.transpose(1, 2).reshape(b, n, d), self.out_proj.weight, self.out_proj.bias), None


def fused_attention(module: nn.Module, enable: bool = True) -> int:
    """Route every batch-first ``nn.MultiheadAttention`` in ``module`` through
    ``F.scaled_dot_product_attention`` for plain self-attention (``enable=False`` restores the native
    path). The weights and state dict are unchanged; calls with masks, ``need_weights=True`` or
    distinct key/value keep the original forward. Returns the number of attention modules changed."""
    import types

    n = 0
    for m in module.modules():
        if isinstance(m, nn.MultiheadAttention) and m.batch_first and m._qkv_same_embed_dim:
            if enable:
                m.forward = types.MethodType(_sdpa_self_attention, m)
            else:
                m.__dict__.pop("forward", None)
            n += 1
    return n


__all__ = ["BF16_FLAGS", "fused_attention", "CpuBf16", "DTYPES", "PRECISIONS", "Precision", "cpu_bf16_support", "resolve_precision"]
