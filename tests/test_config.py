"""The generic typed check (vadlib.config) and its use at the params.yaml boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from vadlib.config import (SECTIONS, bounded, check, to_plain, validate_params,
                           validate_section)
from vadlib.errors import ConfigError
from vadlib.methods.flow_nf.pipeline import FlowNFParams
from vadlib.pipeline import load_params, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Inner:
    k: int = 1


@dataclass
class Cfg:
    sigma: float = bounded(0.0, min=0)
    stride: int = 2
    flag: bool = True
    name: str = "x"
    where: Path | None = None
    names: list[str] = field(default_factory=list)
    table: dict[str, float] = field(default_factory=dict)
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)


def test_good_values_are_converted():
    c = check(Cfg, {"sigma": "1e-3", "stride": 3.0, "where": "~/x", "names": ("a", "b"), "inner": {"k": 4}}, "s")
    assert c.sigma == pytest.approx(1e-3) and isinstance(c.sigma, float)     # YAML 1.1 reads 1e-3 as a string
    assert c.stride == 3 and type(c.stride) is int
    assert c.where == Path("~/x").expanduser() and c.names == ["a", "b"] and c.inner.k == 4
    assert check(Cfg, None, "s") == Cfg()
    assert to_plain(c)["where"] == str(Path("~/x").expanduser())


@pytest.mark.parametrize("data, message", [
    ({"sigma": "abc"}, "params.yaml: s.sigma: expected a number, got 'abc'"),
    ({"sigma": float("nan")}, "s.sigma: expected a finite number"),
    ({"sigma": -1}, "s.sigma: must be >= 0, got -1"),
    ({"stride": 2.5}, "s.stride: expected an integer, got 2.5"),
    ({"stride": True}, "s.stride: expected an integer, got True"),
    ({"stride": "2"}, "s.stride: expected an integer, got '2'"),
    ({"flag": "false"}, "s.flag: expected true or false, got 'false'"),
    ({"flag": 0}, "s.flag: expected true or false, got 0"),
    ({"name": 3}, "s.name: expected a string, got 3"),
    ({"names": "a"}, "s.names: expected a list, got 'a'"),
    ({"names": ["a", 1]}, r"s.names\[1\]: expected a string, got 1"),
    ({"table": ["a"]}, r"s.table: expected a mapping .*, got \['a'\]"),
    ({"table": {"a": "x"}}, "s.table.a: expected a number, got 'x'"),
    ({"mode": "c"}, "s.mode: expected one of 'a', 'b', got 'c'"),
    ({"inner": {"kk": 1}}, r"s.inner: unknown key 'kk' \(did you mean 'k'\?\); known: k"),
    ({"sigm": 1, "zz": 2}, r"s: unknown key 'sigm' \(did you mean 'sigma'\?\) \(and 'zz'\); known: sigma, stride"),
])
def test_bad_values_name_the_path_and_the_problem(data, message):
    with pytest.raises(ConfigError, match=message):
        check(Cfg, data, "s", "params.yaml")


def test_a_list_where_a_mapping_is_expected():
    with pytest.raises(ConfigError, match=r"params.yaml: zeroshot: expected a mapping .*got \['a'\]"):
        validate_section({"zeroshot": ["a"]}, "zeroshot")


def test_the_shipped_params_pass_every_section():
    params = load_params(ROOT / "params.yaml")
    checked = validate_params(params)
    assert set(SECTIONS) <= set(params) | {"backbone"}
    assert checked["extract"]["stride"] == params["extract"]["stride"]


@pytest.mark.parametrize("stage, key, value, message", [
    ("zeroshot", "sigma", "abc", "params.yaml: zeroshot.sigma: expected a number, got 'abc'"),
    ("extract", "stride", 2.5, "params.yaml: extract.stride: expected an integer, got 2.5"),
    ("extract", "on_error", "ignore", "params.yaml: extract.on_error: expected one of 'raise', 'skip'"),
    ("train_mil", "val_fraction", "x", "params.yaml: train_mil.val_fraction: expected a number"),
    ("compare", "all_commits", "false", "params.yaml: compare.all_commits: expected true or false, got 'false'"),
    ("flow_nf", "glow", {"epochs": 1.5}, "params.yaml: flow_nf.glow.epochs: expected an integer, got 1.5"),
    ("transfer", "temporal", {"stride": 2.5}, "params.yaml: transfer.temporal.stride: expected an integer"),
    ("transfer", "prompt_learning", {"enabled": "false"}, "transfer.prompt_learning.enabled: expected true or false"),
])
def test_notebook_parameters_validate_the_stage_section(stage, key, value, message):
    params = load_params(ROOT / "params.yaml")
    params[stage] = {**(params[stage] or {}), key: value}
    with pytest.raises(ConfigError, match=message):
        notebook_parameters(params, stage, "demo_a")


def test_notebook_parameters_validate_shared_sections():
    params = load_params(ROOT / "params.yaml")
    params["seed"] = "0"
    with pytest.raises(ConfigError, match="params.yaml: seed: expected an integer, got '0'"):
        notebook_parameters(params, "zeroshot", "demo_a")
    params = load_params(ROOT / "params.yaml")
    params["datasets"]["ucsd_ped2"]["fps"] = "abc"
    with pytest.raises(ConfigError, match="params.yaml: datasets.ucsd_ped2.fps: expected a number, got 'abc'"):
        notebook_parameters(params, "zeroshot", "demo_a")
    params["datasets"]["ucsd_ped2"]["fps"] = -10
    with pytest.raises(ConfigError, match="datasets.ucsd_ped2.fps: must be > 0, got -10"):
        notebook_parameters(params, "zeroshot", "demo_a")
    params = load_params(ROOT / "params.yaml")
    params["datasets"]["ucsd_ped2"]["colour"] = 1
    with pytest.raises(ConfigError, match="datasets.ucsd_ped2: unknown option.*colour"):
        notebook_parameters(params, "zeroshot", "demo_a")


def test_notebook_parameters_inject_checked_values():
    params = load_params(ROOT / "params.yaml")
    params["zeroshot"]["tau"] = "1e-2"
    assert notebook_parameters(params, "zeroshot", "demo_a")["tau"] == pytest.approx(0.01)


def test_flow_nf_config_defaults_match_the_flow_pipeline_defaults():
    """DEFAULTS (the dict form) is derived from the one declaration, FlowNFParams: they agree."""
    from vadlib.methods.flow_nf.pipeline import DEFAULTS

    typed = to_plain(FlowNFParams())
    for k, v in DEFAULTS.items():
        if isinstance(v, dict):
            assert {kk: typed[k][kk] for kk in v} == v, k
        else:
            assert typed[k] == v, k


def test_model_configs_use_the_generic_check():
    from vadlib.methods.mil.model import MILConfig
    from vadlib.prompts.learning import PromptLearnerConfig
    from vadlib.methods.transfer.temporal import TemporalConfig
    from vadlib.methods.transfer.model import TrainConfig

    with pytest.raises(ConfigError, match="MIL config.epochs: expected an integer, got 2.5"):
        MILConfig.from_dict({"epochs": 2.5})
    with pytest.raises(ConfigError, match="MIL config: unknown key 'epoch' .did you mean 'epochs'"):
        MILConfig.from_dict({"epoch": 2})
    with pytest.raises(ConfigError, match="transfer.temporal.stride: expected an integer, got 2.5"):
        TemporalConfig.from_params({"stride": 2.5})
    with pytest.raises(ConfigError, match="transfer.prompt_learning.n_ctx: expected an integer"):
        PromptLearnerConfig.from_params({"n_ctx": "12"})
    with pytest.raises(ConfigError, match="transfer.train.rotation_augment: expected true or false, got 'false'"):
        TrainConfig.from_params({"rotation_augment": "false"})
    assert TrainConfig.from_params({"lr": "1e-3"}).lr == pytest.approx(1e-3)


def test_values_that_need_no_conversion_are_injected_as_given():
    params = load_params(ROOT / "params.yaml")
    params["flow_nf"]["sigma"] = 3
    got = notebook_parameters(params, "flow_nf")
    assert got["sigma"] == 3 and type(got["sigma"]) is int and got["norm_quantiles"] == [0.0, 0.999]
