"""The one checkpoint reader :func:`vadlib.methods.load`: checkpoints written by earlier versions still
load and predict as they did, a lucazanella/AnomalyCLIP Lightning ``.ckpt`` goes to the importer, and
junk or another stage's checkpoint is refused naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vadlib.errors import DataError
from vadlib.io import read_checkpoint
from vadlib.methods import CHECKPOINT_FORMAT, load

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.mark.parametrize("name", ["anomalyclip", "sultani", "rtfm"])
def test_checkpoints_written_before_vadlib_methods_still_load(name):
    """``<name>_904d05e.pt`` was written by ``vadlib.train.save_checkpoint`` of commit 904d05e (before
    the method packages), with the predictions it gave then in ``predictions_904d05e.npz``."""
    exp = np.load(FIXTURES / "predictions_904d05e.npz")
    m = load(FIXTURES / f"{name}_904d05e.pt")
    assert m.name == name and m.class_names == ["normal", "fight", "fall"]
    assert m.feature_spec["backbone"] == "vadlib-tiny" and m.feature_spec["feat_dim"] == 16
    out = m.predict({k: exp[f"input/{k}"] for k in ("a", "b")})
    for k in ("a", "b"):
        np.testing.assert_allclose(out[k][0], exp[f"{name}/{k}/scores"], rtol=1e-6, atol=1e-7)
        if f"{name}/{k}/probs" in exp:
            np.testing.assert_allclose(out[k][1], exp[f"{name}/{k}/probs"], rtol=1e-6, atol=1e-7)


def test_missing_junk_and_other_kinds_are_refused(tmp_path):
    with pytest.raises(DataError, match="checkpoint file does not exist"):
        load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a loadable checkpoint") as e:
        load(junk)
    assert "junk.pt" in str(e.value)
    other = tmp_path / "transfer.pt"
    torch.save({"format": "vadlib.transfer/1", "state_dict": {}}, other)
    with pytest.raises(DataError, match="not a vadlib.train checkpoint"):
        load(other)
    plain = tmp_path / "plain.pt"
    torch.save(torch.zeros(3), plain)
    with pytest.raises(DataError, match="not a vadlib.train checkpoint"):
        load(plain)


def test_pickled_objects_are_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    p = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "x": Evil()}, p)
    with pytest.raises(DataError, match="not a loadable checkpoint"):
        load(p)


def test_a_lightning_ckpt_goes_to_the_zanella_importer(tmp_path):
    p = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}}, p)
    with pytest.raises(DataError, match="no state_dict in this checkpoint"):
        load(p)


def test_read_checkpoint_any_format(tmp_path):
    p = tmp_path / "t.pt"
    torch.save({"format": "x/1", "a": 1}, p)
    assert read_checkpoint(p, None)["a"] == 1
    with pytest.raises(DataError, match="wrong kind"):
        read_checkpoint(p, "y/1", wrong="wrong kind")
