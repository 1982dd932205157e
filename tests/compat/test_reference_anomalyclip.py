"""vadlib's AnomalyCLIP computes what lucazanella/AnomalyCLIP computes (issue 14 item 3).

Runs only when ``VADLIB_REFERENCE_ANOMALYCLIP`` points at a clone of the reference (its code is
imported from there at run time, never copied) and the optional extra ``reference`` is installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = os.environ.get("VADLIB_REFERENCE_ANOMALYCLIP")
MISSING = [m for m in ("axial_attention", "einops", "dotmap") if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.skipif(not REPO, reason="set VADLIB_REFERENCE_ANOMALYCLIP to a clone of lucazanella/AnomalyCLIP "
                                        "to compare vadlib with the reference code"),
    pytest.mark.skipif(bool(MISSING), reason=f"the reference's packages are missing ({MISSING}): "
                                             "pip install -e '.[reference]'"),
]


@pytest.fixture(scope="module")
def result():
    import torch

    from vadlib.bench.reference_anomalyclip import compare

    torch.set_num_threads(1)
    assert Path(REPO).is_dir(), f"VADLIB_REFERENCE_ANOMALYCLIP={REPO} is not a folder"
    return compare(REPO, "small", seed=0)


def test_reference_mode_matches_the_reference_within_1e_5(result):
    bad = {k: v for k, v in result["reference"].items() if not v[1] <= 1e-5}
    assert not bad, f"relative differences above 1e-5 in reference mode: {bad}"
    expected = {"train_scores", "selector_z", "total", "dir_abn", "dir_nor", "topk_abn", "bottomk_abn", "topk_nor",
                "smooth", "sparse", "grad_norm", "test_scores", "test_class_probs", "lr_per_epoch_100ep_10warm"}
    assert expected <= set(result["reference"])


def test_default_mode_differs_where_a_fix_acts(result):
    d = result["default"]
    assert d["smooth"][1] > 1e-3 and d["grad_norm"][1] > 1e-6       # the per-segment smoothness fix
    assert d["saturated_bottomk_abn"][0] == float("inf")             # log-space: finite where the reference is inf
    assert d["lr_per_epoch_100ep_10warm"][0] > 0                     # warm-up from lr/warm, per step
    assert any(v[0] > 0 for k, v in d.items() if k.startswith("train_start_offsets"))   # sampling starts
    assert d["test_scores"][1] <= 1e-5 and d["dir_abn"][1] <= 1e-5   # nothing else changes on this input
