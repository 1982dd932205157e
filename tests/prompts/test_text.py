"""The one parser of prompt lists (params, papermill strings, the search/detect command line)."""

from __future__ import annotations

import pytest

from vadlib.errors import ConfigError
from vadlib.prompts.text import PromptSet, anomaly_prompts, prompt_list
from vadlib.methods.transfer.model import TargetPrompts


@pytest.mark.parametrize("value, expected", [
    ("a person riding a bicycle", ["a person riding a bicycle"]),
    (" a ;; b ;;", ["a", "b"]),                                   # vadlib search TEXT
    ('["a cart", "a fall"]', ["a cart", "a fall"]),               # papermill -p prompts '[...]'
    (["x ", " y"], ["x", "y"]),
    (("x",), ["x"]),
])
def test_prompt_list_forms(value, expected):
    assert prompt_list(value) == expected


@pytest.mark.parametrize("value", ["", "  ", [], ["ok", ""], [1], "[unclosed", {"a": "b"}])
def test_prompt_list_refuses_naming_the_parameter(value):
    with pytest.raises(ConfigError, match="`normal_prompts`"):
        prompt_list(value, "normal_prompts")


def test_empty_list_only_when_allowed():
    assert prompt_list([], allow_empty=True) == []


def test_prompt_set_and_target_prompts_share_the_parser():
    ps = PromptSet.from_params({"normal": "people walking", "anomaly": ["a cart", "a fall"]})
    assert ps.normal == ["people walking"] and ps.anomaly == {"prompt0": "a cart", "prompt1": "a fall"}
    tp = TargetPrompts.from_params("a cart;;a fall")
    assert tp.anomaly == {"a cart": "a cart", "a fall": "a fall"} and tp.normal == ["a normal scene"]
    assert anomaly_prompts({"cyclist": "a bike"}) == {"cyclist": "a bike"}
    with pytest.raises(ConfigError, match="zeroshot.prompts.x.normal"):
        PromptSet.from_params({"normal": [], "anomaly": ["a"]}, where="zeroshot.prompts.x")
    with pytest.raises(ConfigError, match="no anomaly prompts"):
        TargetPrompts.from_params({"normal": ["n"]})
