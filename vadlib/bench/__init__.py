"""Benchmarks that print their figures: ``python -m vadlib.bench <name> [options]``.

Speed and memory targets are checked here, never in timed unit tests. Each benchmark lives
beside the code it measures; this module only dispatches by name.
"""

from __future__ import annotations

import importlib
import sys

from vadlib.registry import Registry

BENCHMARKS: Registry[str] = Registry("benchmark")
for _name, _target in {
    "extract": "vadlib.features.bench:bench_extract",
    "anomalyclip": "vadlib.models.anomalyclip_bench:bench_anomalyclip",
    "flow": "vadlib.flow.bench:bench_flow",
    "metrics": "vadlib.metrics_bench:bench_metrics",
    "planted_mil": "vadlib.models.anomalyclip_bench:bench_planted",
    "transfer": "vadlib.models.planted_transfer:bench_transfer",
    "search": "vadlib.search:bench_search",
    "reference": "vadlib.bench.reference:main",
}.items():
    BENCHMARKS.register(_name)(_target)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHMARKS.names()))
        return 0
    module, func = BENCHMARKS.get(argv[0]).split(":")
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
