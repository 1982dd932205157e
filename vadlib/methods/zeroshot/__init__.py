"""CLIP zero-shot scoring: ``model`` (prompt scores per frame, methods.md §4.1) and ``dpam`` (Zhou et al.'s
DPAM patch-level anomaly maps, used by ``vadlib detect --heatmap`` and :mod:`vadlib.compat.zhou`)."""
