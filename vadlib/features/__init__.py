"""Features: the open_clip backbone, the streaming extractor and the feature store."""

from vadlib.features.backbone import (RANDOM, TINY, Backbone, RandomWeightsWarning, list_backbones,
                                      load_backbone)

__all__ = ["RANDOM", "TINY", "Backbone", "RandomWeightsWarning", "list_backbones", "load_backbone"]
