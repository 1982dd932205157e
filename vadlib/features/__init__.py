"""Features: the backbones (open_clip, X-CLIP, ActionCLIP: one registry), the streaming extractor and
the feature store."""

from vadlib.features.backbones import (RANDOM, TINY, Backbone, RandomWeightsWarning, list_backbones,
                                       load_backbone)

__all__ = ["RANDOM", "TINY", "Backbone", "RandomWeightsWarning", "list_backbones", "load_backbone"]
