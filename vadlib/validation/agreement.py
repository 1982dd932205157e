"""Does the validator agree with the test? Rank correlation between the pseudo-anomaly validation AUC
and the test AUC of several runs of a one-class stage.

Every (run, method) of a ``flow_nf`` ``metrics.json`` that has both a ``validation`` entry and a test
result is one point; identical points (the training-free ``naive`` score repeats in every run) are
kept once. Spearman's ρ is computed for the validation micro AUC and for the key AUC (mean per-kind
AUC over the run's ``key_kinds``) against the test micro AUC.

    python -m vadlib.validation agree --run c06=reports/flow_nf/metrics.json --run c12=... \\
        --dataset ucsd_ped2 --out reports/flow_nf_ped2/validation_vs_test.csv
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vadlib.errors import DataError

METHODS = ("naive", "flow_nf", "velocity", "fusion")


def agreement_rows(runs: Mapping[str, str | Path], dataset: str, methods: Sequence[str] = METHODS) -> list[dict]:
    """One row per distinct (run, method): ``run``, ``method``, ``val_micro_auc``, ``val_key_auc``,
    ``val_<kind>`` per kind, ``test_micro_auc``, ``test_macro_auc``, ``sigma``."""
    rows, seen = [], set()
    for label, path in runs.items():
        m = json.loads(Path(path).read_text())
        val, res = m.get("validation") or {}, (m.get("results") or {}).get(dataset)
        if res is None or "auc" not in val:
            raise DataError(path, f"no test results for '{dataset}' or no validation block: rerun the stage with "
                            f"validation.videos.{dataset}")
        for meth in methods:
            if meth not in val or meth not in res:
                continue
            v, t = val[meth], res[meth]
            point = (round(v["micro_auc"], 12), round(t["micro_auc"], 12), round(t["macro_auc"], 12))
            if point in seen:
                continue
            seen.add(point)
            rows.append({"run": label, "method": meth, "val_micro_auc": v["micro_auc"], "val_key_auc": v["key_auc"],
                         **{f"val_{k}": a for k, a in v["per_kind"].items()},
                         "test_micro_auc": t["micro_auc"], "test_macro_auc": t["macro_auc"],
                         "sigma": m["protocol"]["sigma"]})
    return rows


def spearman(rows: Sequence[Mapping], val_key: str, test_key: str = "test_micro_auc") -> dict:
    """``{"rho", "p", "n"}``: Spearman's rank correlation of ``val_key`` and ``test_key`` over ``rows``."""
    from scipy.stats import spearmanr

    x = np.array([r[val_key] for r in rows], float)
    y = np.array([r[test_key] for r in rows], float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return {"rho": float("nan"), "p": float("nan"), "n": int(ok.sum())}
    res = spearmanr(x[ok], y[ok])
    return {"rho": float(res.statistic), "p": float(res.pvalue), "n": int(ok.sum())}
