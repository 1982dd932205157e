"""Optical-flow normalising flows (the ``flow_nf`` stage's method): ``pipeline`` (params, region features,
training and scoring), ``glow`` (Glow on flow patches) and ``density`` (GMM / kNN / pose densities).
The optical-flow substrate (flow, regions, descriptors) stays in :mod:`vadlib.flow`."""
