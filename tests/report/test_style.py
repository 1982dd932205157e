"""Thesis figures: every function writes a valid PDF + PNG of the configured width."""

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vadlib.report import style


def _png_size(p: Path) -> tuple[int, int]:
    head = p.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{p} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _pdf_width_in(p: Path) -> float:
    data = p.read_bytes()
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:], f"{p} is not a complete PDF"
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    return (float(box.group(3)) - float(box.group(1))) / 72.0


def _check(paths, width_in: float, dpi: int = style.DPI) -> None:
    pdf, png = sorted(paths, key=lambda p: p.suffix)   # .pdf < .png
    assert pdf.suffix == ".pdf" and png.suffix == ".png"
    assert _pdf_width_in(pdf) == pytest.approx(width_in, abs=0.02)
    w, h = _png_size(png)
    assert w == pytest.approx(width_in * dpi, abs=2) and h > 50


rng = np.random.default_rng(0)


def test_roc_pr_overlay_double_column(tmp_path):
    roc = pd.DataFrame({"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]})
    pr = pd.DataFrame({"recall": [0, 0.5, 1], "precision": [1, 0.8, 0.4]})
    fig = style.roc_pr_overlay({"A": roc, "B": (np.array([0, 1.0]), np.array([0, 1.0]))}, {"A": pr}, width="double")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "A (0.800)" and labels[1] == "B (0.500)"      # area as drawn
    paths = style.save(fig, "roc_overlay", tmp_path)
    assert [p.name for p in paths] == ["roc_overlay.pdf", "roc_overlay.png"]
    _check(paths, style.DOUBLE)


def test_timeline_with_thumbnails_single_column(tmp_path):
    s = np.zeros(100)
    s[[20, 60, 61, 90]] = [0.9, 1.0, 0.95, 0.8]
    idx = style.top_frames(s, k=3)
    assert idx == [20, 60, 90]                    # 61 too close to 60
    frames = rng.integers(0, 255, (3, 24, 32, 3), dtype=np.uint8)
    lab = np.zeros(100, int)
    lab[55:70] = 1
    fig = style.score_timeline(s, lab, frames, idx, width="single", real_weights=False)
    assert any("RANDOM" in t.get_text() for t in fig.texts)
    _check(style.save(fig, "timeline", tmp_path), style.SINGLE)
    with pytest.raises(ValueError, match="frame_indices"):
        style.score_timeline(s, lab, frames, [1])


def test_bars_heatmap_hist_feature_space(tmp_path):
    bars = pd.DataFrame({"class": ["cyclist", "cart", "cyclist", "cart"], "auc": [0.7, 0.6, 0.8, 0.5],
                         "method": ["a", "a", "b", "b"]})
    _check(style.save(style.class_bars(bars, hue="method"), "bars", tmp_path), style.SINGLE)
    m = pd.DataFrame([[90.0, 70.0], [65.0, 88.0]], index=["demo_a", "demo_b"], columns=["demo_a", "demo_b"])
    fig = style.transfer_heatmap(m)
    assert {t.get_text() for t in fig.axes[0].texts} >= {"90.0", "65.0"}
    _check(style.save(fig, "transfer", tmp_path), style.SINGLE)
    fig = style.loglik_histograms({"normal": rng.normal(0, 1, 200), "anomalous": np.r_[rng.normal(-3, 1, 50), -np.inf]})
    assert "1 non-finite" in fig.axes[0].get_legend().get_texts()[1].get_text()
    _check(style.save(fig, "nf_hist", tmp_path), style.SINGLE)
    X = np.r_[rng.normal(0, 1, (80, 8)), rng.normal(3, 1, (20, 8))]
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    fig = style.feature_space(X, y, prototype=X[:80].mean(0), directions={"cyclist": np.ones(8)},
                              class_names=["normal", "cyclist"])
    names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert names == ["normal", "cyclist", "normality prototype"]
    _check(style.save(fig, "features_pca", tmp_path), style.SINGLE)
    fig = style.feature_space(X, y, prototype=X[:80].mean(0), method="tsne")
    assert fig.axes[0].get_xlabel() == "t-SNE 1"
    with pytest.raises(ValueError, match="features must be"):
        style.feature_space(X, y[:5])


def test_save_rejects_unstable_names(tmp_path):
    fig, _ = style.figure("single")
    with pytest.raises(ValueError, match="stable name"):
        style.save(fig, "../x", tmp_path)
