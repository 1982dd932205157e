"""Validation without the test set: pseudo-anomalies made from held-out normal training videos
(methods.md §9), written like a dataset, and the validation AUC a one-class stage reports and
chooses its settings by.

* :mod:`~vadlib.validation.kinds`: the kinds (``skip``, ``reverse``, ``freeze``, ``patch``,
  ``object``) in the :data:`KINDS` registry;
* :mod:`~vadlib.validation.generate`: :func:`make_validation_set` writes a set;
* :mod:`vadlib.data.pseudo_anomalies`: the ``pseudo_anomalies`` dataset adapter (re-exported here);
* :mod:`~vadlib.validation.score`: :func:`validation_metrics` and :func:`choose`;
* :mod:`~vadlib.validation.baselines`: training-free scorers (to check a set; ``python -m vadlib.validation``).
"""

from vadlib.data.pseudo_anomalies import held_out_videos, load_validation_set, pseudo_anomalies
from vadlib.validation.generate import make_validation_set
from vadlib.validation.kinds import KINDS, SPATIAL, PseudoVideo, register_kind, temporal_labels
from vadlib.validation.score import Choice, choose, validation_auc, validation_metrics, validation_truth

__all__ = ["KINDS", "SPATIAL", "Choice", "PseudoVideo", "choose", "held_out_videos", "load_validation_set", "make_validation_set",
           "pseudo_anomalies", "register_kind", "temporal_labels", "validation_auc", "validation_metrics",
           "validation_truth"]
