"""Every registered benchmark runs through the dispatcher: ``--help`` and a seconds-long tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest

from vadlib.bench import BENCHMARKS, main

ROOT = Path(__file__).resolve().parents[2]
PED2 = ROOT.parent / "shared" / "datasets" / "ucsd_ped2"

TINY: dict[str, list[str]] = {
    "extract": ["--model", "vadlib-tiny", "--frames", "8", "--height", "64", "--width", "64", "--batch-size", "4",
                "--workers", "0", "--repeats", "1", "--skip", "memory"],
    "detect": ["--model", "vadlib-tiny", "--frames", "24", "--size", "48x64", "--every", "4", "--batch-size", "4"],
    "anomalyclip": ["--tiny", "--variant", "compact", "--steps", "1", "--threads", "1"],
    "planted_mil": ["--seeds", "0", "--methods", "sultani", "anomalyclip_compact", "--epochs", "1"],
    "flow": ["--videos", "1", "--frames", "6", "--size", "48x64", "--workers", "1", "--methods", "dis:fast"],
    "glow": ["--patches", "512", "--repeats", "1", "--K", "2", "--hidden", "8", "--epochs", "2", "--size", "48x64",
             "--videos", "2,1", "--frames", "12", "--threads", "1"],
    "metrics": ["--frames", "500", "--videos", "4", "--pixel-videos", "1", "--pixel-frames", "3", "--size", "48x64"],
    "transfer": ["--tiny", "--seeds", "0", "--variants", "full", "clip_zeroshot"],
    "search": ["--backbone", "vadlib-tiny", "--pretrained", "random", "--planted-only", "--seeds", "0",
               "--videos", "4"],
    "demo": ["--size", "tiny"],
    "velocity_variants": ["--tiny", "--workers", "1", "--variant", "components={}",
                          "--variant", 'contours={"regions": {"boxes": "contours"}}'],
    "reference": [],  # lists the reference comparisons (they need a reference clone to run)
    # the random-weight file and extract only; tests/bench/test_dryrun.py runs all four stages
    "dryrun": ["--root", str(PED2), "--params", str(ROOT / "params.yaml"), "--backbone", "vadlib-tiny",
               "--stride", "60", "--stages", "extract", "--out", "dryrun"],
}
# what each tiny run must print (so a run that silently printed nothing fails)
EXPECT = {"extract": "frames/s", "detect": "x real time", "anomalyclip": "s/epoch", "planted_mil": "auc", "flow": "frames/s", "glow": "frame AUC",
          "metrics": "aupro", "transfer": "micro frame AUC", "search": "P@1", "demo": "generation",
          "reference": "references:", "dryrun": "peak RSS", "velocity_variants": "key AUC"}


def test_every_benchmark_has_a_tiny_run():
    assert sorted(TINY) == BENCHMARKS.names()


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_help(name, capsys):
    try:
        rc = main([name, "--help"])
    except SystemExit as exc:  # argparse's --help
        rc = exc.code
    assert rc == 0
    assert "usage" in capsys.readouterr().out.lower() or name == "reference"


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_tiny_run(name, capsys, monkeypatch, tmp_path):
    if name == "dryrun" and not PED2.exists():
        pytest.skip(f"{PED2} (real UCSD Ped2 in ../shared) not present")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main([name, *TINY[name]]) == 0
    assert EXPECT[name] in capsys.readouterr().out


def test_unknown_benchmark_lists_the_known_ones():
    from vadlib.errors import ConfigError

    with pytest.raises(ConfigError, match="metrics"):
        main(["no_such_bench"])
