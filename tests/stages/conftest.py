"""A tiny repository for the stage tests: the demo benchmark (size tiny) and both scenes' feature
stores (vadlib-tiny, random weights), made by the demo and extract stages themselves, without papermill."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml

from vadlib.stages._params import StageContext

ROOT = Path(__file__).resolve().parents[2]
BACKBONE = {"name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def params_yaml() -> dict:
    """The repository's params.yaml (its sections are what the stages get through papermill)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def dvc_outputs(stage: str, item: str = "") -> list[str]:
    """The outputs dvc.yaml lists for ``stage`` (``${item}`` filled in), less the executed notebook and
    its HTML, which the runner writes."""
    s = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    s = s.get("do", s)
    outs = []
    for key in ("outs", "metrics", "plots"):
        for e in s.get(key) or []:
            path = (next(iter(e)) if isinstance(e, dict) else e).replace("${item}", item)
            if not path.endswith((".ipynb", ".html")) or path.endswith("index.html"):
                outs.append(path)
    return outs


class Repo:
    """Paths of the tiny repository at ``root`` and the :class:`StageContext` of each stage."""

    def __init__(self, root: Path):
        self.root = root
        self.datasets = {d: {"root": str(root / "data" / "demo"), "layout": "video"} for d in ("demo_a", "demo_b")}

    def ctx(self, stage: str, item: str = "") -> StageContext:
        return StageContext(out_dir=self.root / "reports" / stage / item, item=item, seed=0, backbone=BACKBONE,
                            datasets=self.datasets, reports=self.root / "reports")

    def missing(self, stage: str, item: str = "") -> list[str]:
        return [p for p in dvc_outputs(stage, item) if not (self.root / p).exists()]


@pytest.fixture(scope="session")
def repo(tmp_path_factory) -> Repo:
    from vadlib.stages import demo, extract

    r = Repo(tmp_path_factory.mktemp("stage_repo"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo.run({"root": str(r.root / "data" / "demo"), "size": "tiny"}, r.ctx("demo"))
        for item in ("demo_a", "demo_b"):
            extract.run({"out": str(r.root / "data" / "features")}, r.ctx("extract", item))
    return r


@pytest.fixture
def empty_repo(tmp_path) -> Repo:
    """A repository with nothing in it yet (a test writes the inputs it needs)."""
    return Repo(tmp_path)
