"""Benchmarks that print their figures: ``python -m vadlib.bench <name> [options]``.

Speed and memory targets are checked here, never in timed unit tests. Each benchmark is one
module ``vadlib.bench.<name>`` with ``main(argv) -> int``; this module only dispatches by name.
"""

from __future__ import annotations

import importlib
import sys

from vadlib.registry import Registry

BENCHMARKS: Registry[str] = Registry("benchmark")
for _name in ("extract", "detect", "anomalyclip", "planted_mil", "flow", "glow", "metrics", "transfer", "search", "demo",
              "reference", "dryrun", "velocity_variants"):
    BENCHMARKS.register(_name)(f"vadlib.bench.{_name}")  # each module's main(argv) -> int


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS.names()))
        return 0
    return int(importlib.import_module(BENCHMARKS.get(argv[0])).main(argv[1:]) or 0)
