"""The ``vadlib`` command: ``vadlib detect VIDEO…``, ``vadlib search TEXT COLLECTION``,
``vadlib datasets``, ``vadlib backbones``, ``vadlib run STAGE``, ``vadlib bench NAME``."""

from __future__ import annotations

import argparse
import sys

from vadlib.errors import cli_errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vadlib", description="video anomaly detection toolkit")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("datasets", help="list registered datasets")
    sub.add_parser("backbones", help="list open_clip backbones (incl. vadlib-tiny)")
    run = sub.add_parser("run", help="run one pipeline stage's notebook (as dvc does)")
    run.add_argument("stage")
    run.add_argument("--item")
    bench = sub.add_parser("bench", help="run a benchmark that prints figures")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("detect", help="score your own video: timeline, events, annotated MP4", add_help=False)
    sub.add_parser("search", help="rank moments across a video collection by a description", add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("detect", "search"):
        import importlib

        return importlib.import_module(f"vadlib.{argv[0]}").main(argv[1:])
    return _run(ap.parse_args(argv))


@cli_errors
def _run(args: argparse.Namespace) -> int:
    if args.cmd == "datasets":
        from vadlib.data import list_datasets

        print("\n".join(list_datasets()))
    elif args.cmd == "backbones":
        from vadlib.features import list_backbones

        print("\n".join(list_backbones()))
    elif args.cmd == "run":
        from vadlib.pipeline import main as run_main

        return run_main([args.stage] + (["--item", args.item] if args.item else []))
    elif args.cmd == "bench":
        from vadlib.bench import main as bench_main

        return bench_main(args.args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
