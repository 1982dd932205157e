"""Cross-dataset transfer: ``model`` (temporal transformer + prompt learners trained on a source dataset,
scored on a target dataset) and ``temporal`` (the temporal transformer and its sliding windows)."""
