"""Temporal transformer: windowing covers every frame once, overlaps are averaged, init = CLIP."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vadlib.errors import ConfigError
from vadlib.methods.transfer.temporal import (MIXINGS, TemporalConfig, TemporalTransformer, coverage, make_windows,
                                    sliding_window_forward, window_starts)

torch.set_num_threads(1)


@pytest.mark.parametrize("n", [1, 5, 16, 17, 20, 24, 25, 100])
def test_windows_cover_every_frame(n):
    starts = window_starts(n, 16, 8)
    cov = coverage(n, 16, 8)
    assert cov.min() >= 1 and cov.max() <= 2
    assert starts[-1] < n <= starts[-1] + 16
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4)
    wins, mask, st = make_windows(x, 16, 8)
    assert wins.shape == (len(starts), 16, 4)
    # padded rows repeat the last frame and are marked
    assert int((~mask).sum()) == cov.sum()
    assert torch.all(wins[mask][:, 0] == n - 1)


class RecordingModel(torch.nn.Module):
    """Output = the window's start row broadcast: tells which windows contributed to a row."""

    def __init__(self, starts):
        super().__init__()
        self.starts = starts
        self.calls = 0

    def forward(self, x, mask):
        b, l, d = x.shape
        out = torch.zeros(b, l, d)
        for i in range(b):
            s = self.starts[self.calls + i]
            out[i, :, 0] = 1.0
            out[i, :, 1] = float(s)
        self.calls += b
        return out


def test_overlapping_windows_are_averaged():
    n = 30
    starts = window_starts(n, 16, 8)   # 0, 8, 16
    model = RecordingModel(starts)
    x = torch.randn(n, 2)
    out = sliding_window_forward(model, x, 16, 8)
    assert out.shape == (n, 2)
    # un-normalise: out ∝ (1, mean of covering window starts)
    mean_start = (out[:, 1] / out[:, 0]).numpy()
    for t in range(n):
        cov = [s for s in starts if s <= t < s + 16]
        assert mean_start[t] == pytest.approx(np.mean(cov), abs=1e-5)


@pytest.mark.parametrize("mixing", MIXINGS)
@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "none"])
@pytest.mark.parametrize("n", [7, 16, 41])
def test_init_is_clip_zero_shot(pos, n, mixing):
    torch.manual_seed(0)
    model = TemporalTransformer(64, TemporalConfig(pos_encoding=pos, mixing=mixing)).eval()
    x = torch.randn(n, 64)
    out = sliding_window_forward(model, x, 16, 8)
    assert torch.allclose(out, F.normalize(x, dim=-1), atol=1e-6)


def _perturb(model):
    """Move a model away from its identity initialisation (as training would)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in {"out.weight", "query.weight", "sharpness", "offset_bias"}:
                p.normal_(0, 0.5)
            if name == "gate":
                p.fill_(0.2)


@pytest.mark.parametrize("mixing", MIXINGS)
def test_trained_model_mixes_frames_and_ignores_padding(mixing):
    torch.manual_seed(0)
    model = TemporalTransformer(32, TemporalConfig(heads=4, dropout=0.0, mixing=mixing)).eval()
    _perturb(model)
    x = torch.randn(20, 32)
    out = sliding_window_forward(model, x, 16, 8)
    assert not torch.allclose(out, F.normalize(x, dim=-1), atol=1e-3)
    # padding is masked: a video's outputs do not depend on what the pad rows contain
    wins, mask, _ = make_windows(x, 16, 8)
    a = model(wins, mask)
    wins2 = wins.clone()
    wins2[mask] = torch.randn(int(mask.sum()), 32)
    b = model(wins2, mask)
    assert torch.allclose(a[~mask], b[~mask], atol=1e-5)
    # a frame's output depends on the other frames of its window (temporal mixing)
    y = x.clone()
    y[3] += 5.0
    out2 = sliding_window_forward(model, y, 16, 8)
    assert not torch.allclose(out[0], out2[0], atol=1e-4)


def test_bad_config_errors():
    with pytest.raises(ConfigError, match="heads"):
        TemporalTransformer(30, TemporalConfig(heads=8))
    with pytest.raises(ConfigError, match="unknown key"):
        TemporalConfig.from_params({"layer": 3})
    with pytest.raises(ConfigError, match="position encoding"):
        TemporalConfig.from_params({"pos_encoding": "rope"})
    with pytest.raises(ConfigError, match="mixing"):
        TemporalConfig.from_params({"mixing": "lstm"})
    with pytest.raises(ConfigError, match="stride"):
        TemporalConfig.from_params({"stride": 0})


def test_similarity_pool_with_flat_attention_adds_the_window_mean():
    model = TemporalTransformer(8, TemporalConfig(heads=2, mixing="similarity_pool")).eval()
    with torch.no_grad():
        model.gate.fill_(0.1)      # λ = 10 · gate = 1
    x = F.normalize(torch.randn(1, 5, 8), dim=-1)
    mask = torch.tensor([[False, False, False, True, True]])
    out = model(x, mask)
    mean = x[0, :3].mean(0)        # padded rows excluded from the pool
    expect = F.normalize(x[0, :3] + mean, dim=-1)
    assert torch.allclose(out[0, :3], expect, atol=1e-6)
