"""A local checkpoint file of random weights is marked random by its sidecar ``<file>.vadlib.json``
(what ``python -m vadlib.bench dryrun`` writes), so it is never recorded as real weights."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.features import RandomWeightsWarning, load_backbone
from vadlib.features.backbones.open_clip import SIDECAR_SUFFIX, mark_random_weights, marked_random


def _tiny_file(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        src = load_backbone("vadlib-tiny", "random", random_seed=5)
    ckpt = tmp_path / "tiny-random.pt"
    torch.save(src.model.state_dict(), ckpt)
    return src, ckpt


def test_marked_file_loads_as_random_weights_and_warns(tmp_path):
    src, ckpt = _tiny_file(tmp_path)
    side = mark_random_weights(ckpt, model="vadlib-tiny", seed=5)
    assert side.name == "tiny-random.pt" + SIDECAR_SUFFIX
    assert json.loads(side.read_text()) == {"random_weights": True, "model": "vadlib-tiny", "seed": 5}
    with pytest.warns(RandomWeightsWarning, match="RANDOM WEIGHTS"):
        bb = load_backbone("vadlib-tiny", str(ckpt))
    assert bb.real_weights is False and marked_random(ckpt)
    x = torch.rand(1, 3, 64, 64)   # the file's weights are used, only the flag changes
    torch.testing.assert_close(bb.encode_images(x), src.encode_images(x))


def test_sidecar_saying_false_or_absent_keeps_real_weights(tmp_path):
    _, ckpt = _tiny_file(tmp_path)
    assert marked_random(ckpt) is False
    (tmp_path / ("tiny-random.pt" + SIDECAR_SUFFIX)).write_text('{"random_weights": false}')
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        assert load_backbone("vadlib-tiny", str(ckpt)).real_weights is True


def test_unreadable_sidecar_is_named(tmp_path):
    _, ckpt = _tiny_file(tmp_path)
    side = tmp_path / ("tiny-random.pt" + SIDECAR_SUFFIX)
    side.write_text("{not json")
    with pytest.raises(ConfigError, match=r"tiny-random\.pt\.vadlib\.json.*delete it"):
        load_backbone("vadlib-tiny", str(ckpt))
