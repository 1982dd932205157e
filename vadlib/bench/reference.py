"""``python -m vadlib.bench reference NAME --reference-repo PATH``: vadlib against a reference
implementation on identical random weights.

Each NAME is one module ``vadlib.bench.reference_<name>`` with ``main(argv) -> int``. It imports the
reference code from the user's clone at PATH at run time (never copied into vadlib), builds the
reference module and vadlib's with the same random weights (the reference's state dict moved into
vadlib through ``vadlib.compat``), feeds both the same inputs and prints max absolute and relative
differences.
"""

from __future__ import annotations

import importlib
import sys

from vadlib.registry import Registry

REFERENCES: Registry[str] = Registry("reference")
for _name, _target in {
    "anomalyclip": "vadlib.bench.reference_anomalyclip:main",  # lucazanella/AnomalyCLIP
    "dpam": "vadlib.bench.reference_dpam:main",  # zqhang/AnomalyCLIP
    "velocity": "vadlib.bench.reference_velocity:main",  # talreiss/Accurate-Interpretable-VAD
}.items():
    REFERENCES.register(_name)(_target)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        print("references:", ", ".join(REFERENCES.names()))
        return 0
    module, func = REFERENCES.get(argv[0]).split(":")
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
