"""The method registry of `vadlib detect`: each method declares what it needs, and the CLI builds it
from those declarations alone."""

from __future__ import annotations

import argparse

import pytest

from vadlib.detect import CHECKPOINT_METHODS, CLIP_METHODS, METHODS, DetectMethod, build_parser
from vadlib.detect.cli import build_methods
from vadlib.errors import ConfigError


def test_every_registered_method_declares_what_it_needs():
    assert set(METHODS.names()) == {"zeroshot", "flow_nf", "transfer", "anomalyclip", "sultani", "rtfm"}
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert issubclass(cls, DetectMethod)
        assert cls.from_args.__func__ is not DetectMethod.from_args.__func__, name
    # the declarations, hand-listed: flow_nf needs no CLIP backbone, zeroshot no checkpoint
    assert set(CHECKPOINT_METHODS) == {"flow_nf", "transfer", "anomalyclip", "sultani", "rtfm"}
    assert set(CLIP_METHODS) == {"zeroshot", "transfer", "anomalyclip", "sultani", "rtfm"}


def test_a_newly_registered_method_is_built_without_touching_the_cli(tmp_path):
    made = {}

    class Constant(DetectMethod):
        name = "constant_test"

        @classmethod
        def from_args(cls, name, args, backbone, cfg, checkpoint):
            made.update(name=name, backbone=backbone, checkpoint=checkpoint, stride=cfg.stride)
            return cls()

    METHODS.register("constant_test")(Constant)
    try:
        args = build_parser().parse_args(["v.mp4", "--method", "constant_test", "--out", str(tmp_path),
                                          "--every", "4"])
        method, meta, ckpts = build_methods(args)
    finally:
        METHODS._items.pop("constant_test")
    assert isinstance(method, Constant) and ckpts == []
    assert made == {"name": "constant_test", "backbone": None, "checkpoint": None, "stride": 4}
    assert meta["backbone"] is None and meta["prompts"] == [] and meta["normal_prompts"] is None


def test_a_checkpoint_count_that_does_not_match_the_methods_is_refused(tmp_path):
    args = build_parser().parse_args(["v.mp4", "--method", "flow_nf+zeroshot", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="needs 1 --checkpoint"):
        build_methods(args)
    args = argparse.Namespace(**{**vars(args), "method": "nope"})
    with pytest.raises(ConfigError, match="known: .*zeroshot"):
        build_methods(args)
