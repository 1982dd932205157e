"""Values assumed wherever the data does not record its own (one place for each)."""

#: frames per second of a video, feature index or config that records none
DEFAULT_FPS = 25.0
