"""`vadlib detect --out EXISTING`: a calibration that earlier outputs cite is never replaced."""

from __future__ import annotations

import json

from vadlib.detect import main as detect_main


def test_out_never_replaces_a_cited_calibration(tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    ref_a, ref_b = tmp_path / "normal_a", tmp_path / "normal_b"
    write_video(ref_a / "n0", n=10, size=(40, 56), seed=10, sq=10)
    write_video(ref_b / "n0", n=10, size=(40, 56), seed=31, sq=14)
    clip1 = write_video(tmp_path / "clip1", n=12, size=(40, 56), seed=3, sq=10)
    clip2 = write_video(tmp_path / "clip2", n=12, size=(40, 56), seed=4, sq=10)
    opts = ["--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "a square", "--every", "2",
            "--no-video", "--false-alarm-rate", "0.2"]
    out = tmp_path / "out"
    assert detect_main([str(clip1), *opts, "--calibrate", str(ref_a), "--out", str(out)]) == 0
    saved = (out / "threshold.json").read_text()
    cited = json.loads((out / "clip1" / "events.json").read_text())["threshold"]["value"]
    assert json.loads(saved)["value"] == cited
    capsys.readouterr()
    # another calibration into the same --out: refused before anything is written
    assert detect_main([str(clip2), *opts, "--calibrate", str(ref_b), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "threshold.json: holds the calibration" in err and "earlier outputs" in err and "clip1" in err
    assert (out / "threshold.json").read_text() == saved and not (out / "clip2").exists()
    # the same calibration adds outputs beside the earlier ones
    assert detect_main([str(clip2), *opts, "--calibrate", str(ref_a), "--out", str(out)]) == 0
    assert json.loads((out / "clip2" / "events.json").read_text())["threshold"]["value"] == cited
    # replacing the only output that cites it (--overwrite) may recalibrate
    (out / "clip2").rename(tmp_path / "moved")
    assert detect_main([str(clip1), *opts, "--calibrate", str(ref_b), "--out", str(out), "--overwrite"]) == 0
    new = json.loads((out / "threshold.json").read_text())["value"]
    assert new != cited and json.loads((out / "clip1" / "events.json").read_text())["threshold"]["value"] == new
