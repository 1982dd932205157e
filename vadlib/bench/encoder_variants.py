"""Encoder variants the extract bench times against each other (issue 15): one registry entry per way
of running the image tower, each built from the fp32 backbone and a fresh bf16 one.

Every variant is a function ``build(ctx) -> run`` where ``run(x)`` maps ready fp32 tensors
``(N, 3, S, S)`` to float32 features ``(N, D)`` in batches; global torch settings a variant needs
(threads, oneDNN flags, matmul precision) are set inside ``run`` and restored after it, so the
variants can be interleaved in one run.

* ``fp32``: the fp32 backbone as :func:`~vadlib.features.backbones.load_backbone` builds it (SDPA attention);
* ``fp32-mha``: the same with PyTorch's native multi-head-attention path;
* ``fp32-mathbf16``: fp32 weights, oneDNN's fp32 math mode set to bf16
  (``torch.backends.mkldnn.{matmul,conv}.fp32_precision = 'bf16'``);
* ``fp32-medium``: fp32 weights under ``torch.set_float32_matmul_precision('medium')``;
* ``bf16``: weights cast to bf16 (the code path of ``precision="bf16"``: cast + SDPA attention);
* ``bf16-mha``: cast, native MHA path (the code path before this bench chose SDPA);
* ``bf16-autocast``: ``torch.autocast`` over the fp32 weights;
* ``bf16-channels_last``: cast, channels_last input and patch convolution;
* ``bf16-compile``: cast under ``torch.compile`` (inductor; compiles for minutes on 2 cores);
* ``bf16-threads1``: cast, ``torch.set_num_threads(1)``;
* ``bf16-nomkldnn``: cast, ``torch.backends.mkldnn`` disabled (PyTorch's own bf16 kernels);
* ``bf16-bN`` (e.g. ``bf16-b8``, ``bf16-b64``): cast at batch size N.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from vadlib.registry import Registry

Run = Callable[[torch.Tensor], torch.Tensor]
VARIANTS: Registry[Callable[["VariantContext"], Run]] = Registry("encoder variant")


@dataclass
class VariantContext:
    """What a variant is built from: the fp32 backbone, the shared bf16 backbone (``load_backbone``'s
    bf16 path), a factory of fresh bf16 backbones (variants that change the module get their own
    copy) and the bench's batch size."""

    bb32: object
    bf16: object
    new_bf16: Callable[[], object]
    batch_size: int


def _batched(model: torch.nn.Module, dtype: torch.dtype, batch_size: int,
             settings: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             channels_last: bool = False) -> Run:
    def run(x: torch.Tensor) -> torch.Tensor:
        outs = []
        with settings(), torch.inference_mode():
            for s in range(0, len(x), batch_size):
                xb = x[s:s + batch_size].to(dtype)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                outs.append(model(xb).float())
        return torch.cat(outs)
    return run


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _mkldnn_fp32_math(mode: str) -> Iterator[None]:
    mk = torch.backends.mkldnn
    old = (mk.matmul.fp32_precision, mk.conv.fp32_precision)
    mk.matmul.fp32_precision = mode
    mk.conv.fp32_precision = mode
    try:
        yield
    finally:
        mk.matmul.fp32_precision, mk.conv.fp32_precision = old


@contextlib.contextmanager
def _matmul_precision(mode: str) -> Iterator[None]:
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(mode)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _native_mha(bb) -> object:
    from vadlib.features.precision import fused_attention

    fused_attention(bb.model.visual, enable=False)
    return bb


@VARIANTS.register("fp32")
def _fp32(c: VariantContext) -> Run:
    return _batched(c.bb32.model.visual, torch.float32, c.batch_size)


@VARIANTS.register("fp32-mha")
def _fp32_mha(c: VariantContext) -> Run:
    import copy

    return _batched(_native_mha(copy.deepcopy(c.bb32)).model.visual, torch.float32, c.batch_size)


@VARIANTS.register("fp32-mathbf16")
def _fp32_mathbf16(c: VariantContext) -> Run:
    return _batched(c.bb32.model.visual, torch.float32, c.batch_size, lambda: _mkldnn_fp32_math("bf16"))


@VARIANTS.register("fp32-medium")
def _fp32_medium(c: VariantContext) -> Run:
    return _batched(c.bb32.model.visual, torch.float32, c.batch_size, lambda: _matmul_precision("medium"))


@VARIANTS.register("bf16")
def _bf16(c: VariantContext) -> Run:
    return _batched(c.bf16.model.visual, torch.bfloat16, c.batch_size)


@VARIANTS.register("bf16-mha")
def _bf16_mha(c: VariantContext) -> Run:
    return _batched(_native_mha(c.new_bf16()).model.visual, torch.bfloat16, c.batch_size)


@VARIANTS.register("bf16-autocast")
def _bf16_autocast(c: VariantContext) -> Run:
    return _batched(c.bb32.model.visual, torch.float32, c.batch_size, lambda: torch.autocast("cpu", torch.bfloat16))


@VARIANTS.register("bf16-channels_last")
def _bf16_cl(c: VariantContext) -> Run:
    visual = c.new_bf16().model.visual
    visual.conv1.to(memory_format=torch.channels_last)
    return _batched(visual, torch.bfloat16, c.batch_size, channels_last=True)


@VARIANTS.register("bf16-compile")
def _bf16_compile(c: VariantContext) -> Run:
    return _batched(torch.compile(c.new_bf16().model.visual), torch.bfloat16, c.batch_size)


@VARIANTS.register("bf16-threads1")
def _bf16_threads1(c: VariantContext) -> Run:
    return _batched(c.bf16.model.visual, torch.bfloat16, c.batch_size, lambda: _threads(1))


@VARIANTS.register("bf16-nomkldnn")
def _bf16_nomkldnn(c: VariantContext) -> Run:
    return _batched(c.bf16.model.visual, torch.bfloat16, c.batch_size,
                    lambda: torch.backends.mkldnn.flags(enabled=False))


def build_variant(name: str, ctx: VariantContext) -> Run:
    """The ``run`` of variant ``name``; ``bf16-bN`` is the cast model at batch size N.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    if name.startswith("bf16-b") and name[6:].isdigit():
        return _batched(ctx.bf16.model.visual, torch.bfloat16, int(name[6:]))
    return VARIANTS.get(name)(ctx)


def matmul_gflops(precision: str = "fp32", n: int = 2048, repeats: int = 3) -> float:
    """Measured GFLOP/s of an ``n × n`` matmul in ``precision`` (``fp32`` | ``bf16``), best of ``repeats``."""
    import time

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def tower_gflop(visual: torch.nn.Module, image_size: int) -> float:
    """GFLOP of one image through ``visual`` (matmuls, convolutions, attention; counted by
    ``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    p = next(visual.parameters())
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        visual(torch.zeros(1, 3, image_size, image_size, dtype=p.dtype, device=p.device))
    return fc.get_total_flops() / 1e9


__all__ = ["VARIANTS", "VariantContext", "build_variant", "matmul_gflops", "tower_gflop"]
