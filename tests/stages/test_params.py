"""Stage parameters: one source of defaults (the stage's Params), checked against params.yaml, and
notebooks whose parameters cell holds only what papermill sets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jupytext
import pytest

from vadlib.errors import ConfigError
from vadlib.methods.flow_nf.pipeline import DEFAULTS, FlowNFParams, merge_params
from vadlib.pipeline import _declared_only
from vadlib.stages import STAGES, get_stage, parameter_names
from vadlib.stages._params import from_section, split_params
from vadlib.stages.flow_nf import Params as FlowParams
from vadlib.stages.train_mil import Params as MILParams

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stage", STAGES)
def test_every_params_yaml_key_is_a_typed_stage_parameter(stage, params_yaml):
    section = params_yaml[stage]
    assert set(section) <= parameter_names(stage)
    p = from_section(get_stage(stage).Params, section, stage)          # right types too
    assert {k: getattr(p, k) for k in section if not isinstance(section[k], dict)} == \
        {k: v for k, v in section.items() if not isinstance(v, dict)}


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_notebook_declares_only_params(stage):
    nb = jupytext.read(ROOT / "notebooks" / f"{stage}.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert [ln.split("=")[0].strip() for ln in cell.source.splitlines() if ln and not ln.startswith("#")] == ["params"]
    # the runner hands it the whole section (+ shared sections) as one dict, and rejects unknown keys
    given = {"seed": 1, "out_dir": "o", "stage": stage, "item": "", "reports": "r"}
    assert _declared_only(given, Path(f"notebooks/{stage}.py"), nb, stage_keys=set()) == {"params": given}
    with pytest.raises(ConfigError, match=f"params.yaml: {stage}.nope is not a parameter of stage {stage}"):
        _declared_only(given, Path(f"notebooks/{stage}.py"), nb, stage_keys={"nope"})


def test_from_section_merges_dicts_and_rejects_typos_and_wrong_types():
    p = from_section(FlowParams, {"glow": {"K": 3}, "sigma": 0}, "flow_nf")
    assert p.glow["K"] == 3 and p.glow["hidden"] == 64 and p.sigma == 0
    assert dataclasses.asdict(p) == merge_params({"glow": {"K": 3}, "sigma": 0})
    with pytest.raises(ConfigError, match=r"params.yaml: flow_nf: unknown key 'glwo' \(did you mean 'glow'\?\)"):
        from_section(FlowParams, {"glwo": {}}, "flow_nf")
    with pytest.raises(ConfigError, match=r"params.yaml: train_mil.val_fraction: expected a number, got 'x'"):
        from_section(MILParams, {"val_fraction": "x"}, "train_mil")
    assert from_section(MILParams, {"preset": {"demo_a": "demo"}}, "train_mil").preset == {"demo_a": "demo"}
    assert from_section(MILParams, {"classes": None}, "train_mil").classes is None


def test_flow_nf_defaults_have_one_source():
    assert DEFAULTS == dataclasses.asdict(FlowNFParams()) and FlowParams is FlowNFParams
    DEFAULTS["glow"]["K"] = 99                      # the dict handed out is a copy of the typed defaults
    try:
        assert FlowNFParams().glow["K"] == 8
    finally:
        DEFAULTS["glow"]["K"] = 8


def test_split_params_separates_the_runner_keys():
    section, ctx = split_params({"seed": 3, "datasets": {"a": {}}, "item": "a", "out_dir": "o", "stage": "s",
                                 "reports": "r", "sigma": 1}, "zeroshot")
    assert section == {"sigma": 1}
    assert (ctx.seed, ctx.item, str(ctx.out_dir), str(ctx.reports)) == (3, "a", "o", "r")


def test_params_yaml_anchors_sit_on_lists_and_strings_only(params_yaml):
    """DVC's `-S a.b.c=...` on a key inside an anchored mapping is lost (at the anchor) or changes every
    alias (at an alias); anchors on lists and strings are replaced key by key, as one expects."""
    import yaml

    events = [e for e in yaml.parse((ROOT / "params.yaml").read_text()) if getattr(e, "anchor", None)]
    anchored = [e for e in events if not isinstance(e, yaml.AliasEvent)]
    assert anchored, "params.yaml writes the demo prompts once (anchors)"
    assert all(isinstance(e, (yaml.ScalarEvent, yaml.SequenceStartEvent)) for e in anchored), \
        [e.anchor for e in anchored if isinstance(e, yaml.MappingStartEvent)]
    z, t = params_yaml["zeroshot"]["prompts"], params_yaml["transfer"]
    assert z["demo_a"] == z["demo_b"] and t["normal_prompts"]["demo_b"] == z["demo_a"]["normal"]
    assert t["prompts"]["demo_a"] == list(z["demo_a"]["anomaly"].values()) == t["prompts"]["demo_b"]


@pytest.mark.parametrize("stage, section, message", [
    ("extract", {"stride": 0}, "params.yaml: extract.stride: must be >= 1, got 0"),
    ("extract", {"stride": 2.5}, "params.yaml: extract.stride: expected an integer, got 2.5"),
    ("extract", {"crops": 3}, "params.yaml: extract.crops: expected one of 1, 5, 10, got 3"),
    ("zeroshot", {"tau": 0}, "params.yaml: zeroshot.tau: must be > 0, got 0"),
    ("zeroshot", {"prompts": {"demo_a": {"normall": []}}},
     r"params.yaml: zeroshot.prompts.demo_a: unknown key 'normall' \(did you mean 'normal'\?\)"),
    ("train_mil", {"val_fraction": 0.95}, "params.yaml: train_mil.val_fraction: must be <= 0.9, got 0.95"),
    ("report", {"quoted": "some"}, "params.yaml: report.quoted: expected one of 'matching', 'all', 'none'"),
    ("flow_nf", {"glow": {"lr": 0}}, "params.yaml: flow_nf.glow.lr: must be > 0, got 0"),
    ("flow_nf", {"patch": {"rescale": "false"}}, "params.yaml: flow_nf.patch.rescale: expected true or false"),
    ("flow_nf", {"norm_quantiles": [0.0]}, r"params.yaml: flow_nf.norm_quantiles: expected a list of 2 entries"),
    ("transfer", {"pairs": [["demo_a"]]}, r"params.yaml: transfer.pairs\[0\]: expected a list of 2 entries"),
    ("transfer", {"train": {"lr": "x"}}, "params.yaml: transfer.train.lr: expected a number, got 'x'"),
])
def test_the_stage_params_are_the_strict_declaration_of_their_section(stage, section, message):
    """The stage's Params (not a second class in vadlib.config) carries every bound and choice."""
    from vadlib.config import SECTIONS

    assert SECTIONS[stage] is get_stage(stage).Params
    with pytest.raises(ConfigError, match=message):
        from_section(get_stage(stage).Params, section, stage)


def test_dict_sections_keep_their_defaults_and_stay_dicts():
    p = from_section(FlowParams, {"glow": {"lr": "1e-4"}, "patch": {"size": 4.0}}, "flow_nf")
    assert p.glow["lr"] == pytest.approx(1e-4) and p.glow["K"] == 8 and p.patch == {**DEFAULTS["patch"], "size": 4}
    assert type(p.patch["size"]) is int


def test_checking_a_stage_imports_only_its_own_stage_module():
    """The runner checks a stage's section with that stage's Params, found by name: checking zeroshot
    imports neither another stage's module nor the transfer models (see test_dvc_deps.py)."""
    import ast
    import subprocess
    import sys

    code = ("import sys; from vadlib.pipeline import load_params, notebook_parameters; "
            "notebook_parameters(load_params('params.yaml'), 'zeroshot', 'demo_a'); "
            "print(sorted(m for m in sys.modules if m.startswith(('vadlib.stages.', 'vadlib.methods.transfer.model', "
            "'vadlib.methods.transfer.temporal', 'vadlib.methods.flow_nf', 'vadlib.flow'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = [m for m in ast.literal_eval(out.stdout.strip()) if not m.startswith("vadlib.stages._")]     # _params, _inputs: helpers
    assert loaded == ["vadlib.stages.zeroshot"], out.stdout + out.stderr
