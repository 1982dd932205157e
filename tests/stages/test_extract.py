"""The extract stage honours ``backbone.precision``: a bf16 store is a separate store, recorded as such;
bf16 on a CPU without bf16 units is refused before anything is written."""

from __future__ import annotations

import json
import warnings

import pytest

from vadlib.errors import ConfigError
from vadlib.features import precision as P
from vadlib.stages import extract
from vadlib.stages._params import StageContext

needs_bf16 = pytest.mark.skipif(not P.cpu_bf16_support().supported,
                                reason="this CPU has no native bf16 (AMX / AVX-512-BF16)")


def _ctx(repo, precision: str, tmp_path) -> StageContext:
    ctx = repo.ctx("extract", "demo_a")
    return StageContext(out_dir=tmp_path / "reports" / "extract" / "demo_a", item="demo_a", seed=0,
                        backbone={**ctx.backbone, "precision": precision}, datasets=ctx.datasets,
                        reports=tmp_path / "reports")


@needs_bf16
def test_bf16_store_is_separate_and_recorded(repo, tmp_path):
    out = tmp_path / "features"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = extract.run({"out": str(out)}, _ctx(repo, "fp32", tmp_path))["store"]
        bf16 = extract.run({"out": str(out)}, _ctx(repo, "bf16", tmp_path))["store"]
    assert fp32.path != bf16.path and "__bf16__" in bf16.path.name and "__bf16" not in fp32.path.name
    assert (fp32.info["precision"], bf16.info["precision"]) == ("fp32", "bf16")
    assert json.loads((bf16.path / "index.json").read_text())["precision"] == "bf16"


def test_bf16_is_refused_without_bf16_units(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: P.CpuBf16(False, (), "/proc/cpuinfo (test)"))
    with pytest.raises(ConfigError, match="bf16 refused"):
        extract.run({"out": str(tmp_path / "features")}, _ctx(repo, "bf16", tmp_path))
    assert not (tmp_path / "features").exists()


def test_extract_precision_is_no_longer_a_stage_parameter(repo, tmp_path):
    with pytest.raises(ConfigError, match="precision"):
        extract.run({"out": str(tmp_path / "features"), "precision": "bf16"}, _ctx(repo, "fp32", tmp_path))
