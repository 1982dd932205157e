"""The offline-weights error names the remedy in the syntax of what failed (command line vs stage)."""

import sys
import types

import pytest

from vadlib.errors import WeightsUnavailableError
from vadlib.features import load_backbone


def _message(tmp_path) -> str:
    with pytest.raises(WeightsUnavailableError) as err:
        load_backbone("vadlib-tiny", str(tmp_path / "missing.pt"))
    return str(err.value)


def test_command_line_remedy_names_flags(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    msg = _message(tmp_path)
    assert "--backbone vadlib-tiny --pretrained random" in msg and "give --pretrained" in msg
    assert "-S backbone" not in msg and "params.yaml" not in msg


def test_stage_remedy_names_dvc_params(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))   # as in a papermill kernel
    msg = _message(tmp_path)
    assert "-S backbone.name=vadlib-tiny -S backbone.pretrained=random" in msg and "make demo" in msg
    assert "backbone.pretrained in params.yaml" in msg and "--backbone" not in msg
