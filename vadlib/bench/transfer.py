"""The planted transfer table: ``python -m vadlib.bench transfer [--seeds 0 1 2] [--variants …] [--tiny]``.

Trains VideoAnomalyCLIP on the planted source (:mod:`vadlib.synthetic.planted_transfer`, weak
video labels) and scores the planted target with every ablation of :mod:`vadlib.methods.transfer.model`;
prints the micro frame AUC and AP per variant, score and seed. ``--tiny`` shrinks the benchmark
(8 source / 4 target videos of 40–60 frames, 2 epochs) to a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from vadlib.methods.transfer.model import TransferConfig, TransferResult, run_transfer, text_encoder_for
from vadlib.synthetic.planted_transfer import PlantedTransferConfig, make_planted_transfer


def planted_transfer_config(**overrides) -> TransferConfig:
    """The transfer configuration the planted benchmark is run with (tiny model: D = 64)."""
    from vadlib.prompts.learning import PromptLearnerConfig
    from vadlib.methods.transfer.temporal import TemporalConfig
    from vadlib.methods.transfer.model import TrainConfig

    cfg = TransferConfig(temporal=TemporalConfig(), prompt_learning=PromptLearnerConfig(n_ctx=4),
                         train=TrainConfig())
    return replace(cfg, **overrides)


def run_planted(cfg: PlantedTransferConfig | None = None, transfer: TransferConfig | None = None,
                log=None) -> TransferResult:
    """Train on the planted source, test on the planted target; the table has every ablation."""
    cfg = cfg or PlantedTransferConfig()
    transfer = transfer or planted_transfer_config()
    if transfer.train.seed != cfg.seed:
        transfer = replace(transfer, train=replace(transfer.train, seed=cfg.seed))
    data, prompts, bb = make_planted_transfer(cfg)
    return run_transfer([("source", "target")], lambda name, split: data[(name, split)], prompts, transfer,
                        text_encoder_for(bb, transfer.templates), backbone=bb, log=log)


def main(argv: list[str] | None = None) -> int:
    """Print the planted transfer table (see the module docstring)."""
    import pandas as pd

    from vadlib.methods.transfer.model import VARIANTS

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench transfer", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=None, help=f"default: all ({', '.join(VARIANTS.names())})")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run on a shrunken benchmark")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    transfer = planted_transfer_config(variants=args.variants or VARIANTS.names())
    if args.tiny:
        transfer = replace(transfer, train=replace(transfer.train, epochs=2))
    tables = []
    for s in args.seeds:
        cfg = PlantedTransferConfig(seed=s)
        if args.tiny:
            cfg = replace(cfg, n_train=8, n_test=4, length=(40, 60), anomaly_length=(10, 20))
        r = run_planted(cfg, transfer, log=None)
        tables.append(r.table.assign(seed=s))
    tab = pd.concat(tables)
    for metric, title in (("micro_auc", "planted transfer: source -> target, micro frame AUC per seed"),
                          ("micro_ap", "micro frame AP per seed")):
        piv = tab.pivot_table(index=["variant", "score"], columns="seed", values=metric)
        piv["mean"] = piv.mean(axis=1)
        print(title)
        print(piv.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
