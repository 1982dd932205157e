"""Synthetic data whose truth is known, for tests and benchmarks.

* :mod:`~vadlib.synthetic.planted_mil`: planted CLIP-like feature sequences for the weakly
  supervised methods (``make_planted_mil``);
* :mod:`~vadlib.synthetic.planted_transfer`: planted source/target features in a text encoder's
  space for the transfer model (``make_planted_transfer``);
* :mod:`~vadlib.synthetic.planted_search`: a planted search collection (``planted_collection``);
* :mod:`~vadlib.synthetic.flow`: frame-folder videos of moving squares for the optical-flow code;
* :mod:`~vadlib.synthetic.demo`: the renderer of the demo benchmark the pipeline runs on
  (``generate_demo``); its dataset adapters (``demo_a``, ``demo_b``) are :mod:`vadlib.data.demo`.
"""
