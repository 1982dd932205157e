"""AnomalyCLIP (Zanella et al., CVPR 2024): ``model`` (the network, loss, config and its presets in
``presets/*.yaml``), ``method`` (the :class:`~vadlib.methods.base.Method` adapter, registered as
``anomalyclip``). Published checkpoints are imported by :mod:`vadlib.compat.zanella`."""
