"""Methods. Each ends in :class:`vadlib.results.Predictions` (per-frame scores, optional classes)."""
