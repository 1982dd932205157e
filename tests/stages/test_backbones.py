"""Video backbones through every stage (xclip-tiny, random weights): extract samples clips, zeroshot
scores them with X-CLIP's prompt generator, train_mil (AnomalyCLIP, learned prompts through X-CLIP's
text tower) and transfer train on them, a checkpoint refuses another backbone's features; the
``backbones`` matrix stage and the report's comparison table + figure."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml

from vadlib.errors import ConfigError
from vadlib.features.store import FeatureStore
from vadlib.stages import backbones, extract, report, train_mil, transfer, zeroshot
from vadlib.stages._params import StageContext

from tests.stages.conftest import ROOT, dvc_outputs

XCLIP = {"name": "xclip-tiny", "pretrained": "random", "device": "cpu"}


class XRepo:
    """The stage repository's demo data with xclip-tiny stores under ``reports_xclip`` / ``features_xclip``."""

    def __init__(self, repo):
        self.repo, self.root = repo, repo.root
        self.reports = repo.root / "reports_xclip"

    def ctx(self, stage: str, item: str = "", backbone=XCLIP) -> StageContext:
        return StageContext(out_dir=self.reports / stage / item, item=item, seed=0, backbone=backbone,
                            datasets=self.repo.datasets, reports=self.reports)


@pytest.fixture(scope="module")
def xrepo(repo):
    x = XRepo(repo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in ("demo_a", "demo_b"):
            extract.run({"out": str(repo.root / "data" / "features_xclip")}, x.ctx("extract", item))
    return x


def test_extract_stage_samples_clips_for_a_video_backbone(xrepo):
    rec = json.loads((xrepo.reports / "extract" / "demo_a" / "store.json").read_text())
    st = FeatureStore.open(rec["store"])
    assert st.info["sampling"] == "clip" and st.info["clip_len"] == 8 and st.info["aux"] == "prompt_tokens"
    v = st.videos()[0]
    spans = st.frame_spans(v)
    assert spans[0, 0] == 0 and spans[-1, 1] == st.num_frames(v) and np.all(spans[1:, 0] == spans[:-1, 1])


def test_zeroshot_on_clip_features_takes_the_prompt_generator(xrepo, params_yaml):
    p = {**params_yaml["zeroshot"], "validation": {**params_yaml["zeroshot"]["validation"],
                                                   "root": str(xrepo.root / "data" / "validation_xclip")}}
    res = zeroshot.run(p, xrepo.ctx("zeroshot", "demo_a"), figures=False)
    m = json.loads((xrepo.reports / "zeroshot" / "demo_a" / "metrics.json").read_text())
    assert m["protocol"]["text_path"] == "video-conditioned prompt generator"
    assert m["protocol"]["sampling"] == "clip 8 stride 8" and m["protocol"]["real_weights"] is False
    assert 0 <= m["micro_auc"] <= 1 and m["validation"]["real_weights"] is False   # validation set: clips too
    for v, lab in res["labels"].items():   # clip scores expanded to every frame
        assert len(res["predictions"]["softmax"].scores()[v]) == len(lab)


def test_zeroshot_refuses_a_store_of_another_backbone(xrepo, params_yaml):
    with pytest.raises(ConfigError, match="was made with xclip-tiny, not vadlib-tiny"):
        zeroshot.run(params_yaml["zeroshot"], xrepo.ctx("zeroshot_bad", "demo_a", backbone={
            "name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}), figures=False)


def test_train_mil_anomalyclip_on_xclip_features_and_the_checkpoint_refuses_clip_features(xrepo, repo, params_yaml):
    p = {**params_yaml["train_mil"], "method": "anomalyclip", "overrides": {"epochs": 1}, "seeds": [0]}
    train_mil.run(p, xrepo.ctx("train_mil", "demo_a"))
    out = xrepo.reports / "train_mil" / "demo_a"
    m = json.loads((out / "metrics.json").read_text())
    assert 0 <= m["micro_auc"] <= 1 and m["protocol"]["backbone"] == "xclip-tiny"
    ck = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert ck["meta"]["features"]["sampling"] == "clip" and ck["meta"]["features"]["clip_len"] == 8
    # evaluating it on the open_clip store of the same dataset is refused
    with pytest.raises(ConfigError, match="xclip-tiny"):
        train_mil.run({**p, "checkpoint_in": str(out / "model.pt")}, repo.ctx("train_mil_cross", "demo_a"))


def test_transfer_on_xclip_features(xrepo, params_yaml):
    p = {**params_yaml["transfer"], "train": {"epochs": 1}, "variants": ["full", "clip_zeroshot"]}
    transfer.run(p, xrepo.ctx("transfer"))
    m = json.loads((xrepo.reports / "transfer" / "metrics.json").read_text())
    assert m["protocol"]["backbone"].startswith("xclip-tiny") and m["protocol"]["real_weights"] is False
    assert set(m["pairs"]) == {"demo_a->demo_b", "demo_b->demo_a"}


def _backbone_params(params_yaml, root, keys):
    demo = yaml.safe_load((ROOT / "params.demo.yaml").read_text())["backbones"]["models"]
    return {**params_yaml["backbones"], "models": {k: demo[k] for k in keys}, "run_on": list(keys),
            "out": str(root / "data" / "features" / "backbones")}


def test_backbones_matrix_entries_and_the_report_table(repo, params_yaml):
    p = _backbone_params(params_yaml, repo.root, ["clip", "xclip", "actionclip"])
    for key in ("clip", "xclip", "actionclip"):
        backbones.run(p, repo.ctx("backbones", key))
        want = [o.replace("${item.key}", key) for o in dvc_outputs("backbones") if "${item.key}" in o]
        assert [o for o in want if not (repo.root / o).exists()] == []
    mx = json.loads((repo.root / "reports" / "backbones" / "xclip" / "metrics.json").read_text())
    mc = json.loads((repo.root / "reports" / "backbones" / "clip" / "metrics.json").read_text())
    assert mx["protocol"]["text_path"] == "video-conditioned prompt generator" and mx["protocol"]["kind"] == "clip"
    assert mc["protocol"]["text_path"] == "text tower" and mc["protocol"]["kind"] == "frame"
    assert mx["protocol"]["dataset"] == mc["protocol"]["dataset"] == "demo_b" and mx["n_frames"] == mc["n_frames"]
    from vadlib.report.backbones import comparison_table

    table = comparison_table(repo.root / "reports")
    assert sorted(table["key"]) == ["actionclip", "clip", "xclip"] and not table["real_weights"].any()
    ma = json.loads((repo.root / "reports" / "backbones" / "actionclip" / "metrics.json").read_text())
    assert ma["protocol"]["text_path"] == "text tower" and ma["protocol"]["kind"] == "clip"
    assert ma["protocol"]["family"] == "actionclip" and ma["n_frames"] == mc["n_frames"]
    out, figs = repo.root / "reports" / "report_cmp", repo.root / "reports" / "figures_cmp"
    out.mkdir(parents=True)
    assert report.backbone_comparison(repo.root / "reports", out, figs) == [figs / "backbone_comparison.png"]
    assert (figs / "backbone_comparison.png").is_file() and (figs / "backbone_comparison.pdf").is_file()
    md = (out / "backbones.md").read_text()
    assert md.count("NO (RANDOM WEIGHTS)") == 3 and "video-conditioned prompt generator" in md


def test_the_matrix_is_declared_in_dvc_yaml_and_params():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["backbones"]
    assert stage["matrix"] == {"key": "${backbones.run_on}"} and "--item ${item.key}" in stage["cmd"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["backbones"]
    demo = yaml.safe_load((ROOT / "params.demo.yaml").read_text())["backbones"]
    assert demo["run_on"] == ["clip", "xclip", "actionclip"]
    assert set(params["run_on"]) <= set(params["models"]) and set(params["run_on"]) <= set(demo["models"])
    assert {m["name"] for m in params["models"].values()} == {"ViT-B-16", "xclip", "actionclip/ViT-B-16"}
    assert all(m["pretrained"] == "random" for m in demo["models"].values())
    backbones.Params(**{k: v for k, v in params.items()})   # the section matches the stage's Params


# ------------------------------------------------------------------ ActionCLIP (a file made by --make-tiny)

@pytest.fixture(scope="module")
def arepo(repo):
    """The demo data with ActionCLIP stores (a local tiny file in the authors' layout, clip_len recorded
    by its name only, as the authors' files) under ``reports_ac`` / ``features_ac``."""
    from vadlib.features.backbones.actionclip import main

    path = repo.root / "models" / "actionclip_tiny-8f.pt"
    path.parent.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["--make-tiny", str(path), "--unrecorded"])
    a = XRepo(repo)
    a.reports = repo.root / "reports_ac"
    a.backbone = {"name": "actionclip/vadlib-tiny", "pretrained": str(path), "device": "cpu"}
    a.file = path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in ("demo_a", "demo_b"):
            extract.run({"out": str(repo.root / "data" / "features_ac")},
                        a.ctx("extract", item, backbone=a.backbone))
    return a


def test_actionclip_extract_zeroshot_with_its_template_set(arepo, params_yaml):
    st = FeatureStore.open(json.loads((arepo.reports / "extract" / "demo_a" / "store.json").read_text())["store"])
    assert st.info["backbone"] == "actionclip/vadlib-tiny" and st.info["clip_len"] == 8 and st.info["aux"] is None
    assert st.info["text_path"] == "text tower" and st.info["preprocessing"]["resize_to"] == round(64 * 256 / 224)
    p = {**params_yaml["zeroshot"], "templates": "actionclip",
         "validation": {**params_yaml["zeroshot"]["validation"], "root": str(arepo.root / "data" / "validation_ac")}}
    res = zeroshot.run(p, arepo.ctx("zeroshot", "demo_a", backbone=arepo.backbone), figures=False)
    m = json.loads((arepo.reports / "zeroshot" / "demo_a" / "metrics.json").read_text())
    assert m["protocol"]["text_path"] == "text tower" and m["protocol"]["sampling"] == "clip 8 stride 8"
    assert 0 <= m["micro_auc"] <= 1
    for v, lab in res["labels"].items():
        assert len(res["predictions"]["softmax"].scores()[v]) == len(lab)


def test_train_mil_anomalyclip_and_transfer_on_actionclip_features(arepo, repo, params_yaml):
    p = {**params_yaml["train_mil"], "method": "anomalyclip", "overrides": {"epochs": 1}, "seeds": [0]}
    train_mil.run(p, arepo.ctx("train_mil", "demo_a", backbone=arepo.backbone))
    out = arepo.reports / "train_mil" / "demo_a"
    m = json.loads((out / "metrics.json").read_text())
    assert 0 <= m["micro_auc"] <= 1 and m["protocol"]["backbone"] == "actionclip/vadlib-tiny"
    ck = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert ck["meta"]["features"]["sampling"] == "clip" and ck["meta"]["features"]["clip_len"] == 8
    with pytest.raises(ConfigError, match="actionclip/vadlib-tiny"):   # refused on open_clip features
        train_mil.run({**p, "checkpoint_in": str(out / "model.pt")}, repo.ctx("train_mil_cross_ac", "demo_a"))
    pt = {**params_yaml["transfer"], "train": {"epochs": 1}, "variants": ["full", "clip_zeroshot"],
          "templates": "actionclip"}
    transfer.run(pt, arepo.ctx("transfer", backbone=arepo.backbone))
    mt = json.loads((arepo.reports / "transfer" / "metrics.json").read_text())
    assert mt["protocol"]["backbone"].startswith("actionclip/vadlib-tiny")
    assert set(mt["pairs"]) == {"demo_a->demo_b", "demo_b->demo_a"}


def test_an_actionclip_file_without_fusion_weights_fails_the_extract_stage_and_writes_nothing(arepo, repo):
    ck = torch.load(arepo.file, map_location="cpu", weights_only=True)
    del ck["fusion_model_state_dict"]
    bad = repo.root / "models" / "no_fusion-8f.pt"
    torch.save(ck, bad)
    out = repo.root / "data" / "features_bad"
    ctx = arepo.ctx("extract_bad", "demo_a", backbone={**arepo.backbone, "pretrained": str(bad)})
    from vadlib.errors import DataError

    with pytest.raises(DataError, match="missing 'fusion_model_state_dict'"):
        extract.run({"out": str(out)}, ctx)
    assert not out.exists() and not (arepo.reports / "extract_bad").exists()
