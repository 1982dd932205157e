"""The MIL baselines: Sultani et al. ranking (``sultani``) and RTFM feature-magnitude top-k (``rtfm``):
``model`` (networks, losses, configs; the papers' settings in ``presets/*.yaml``), ``method`` (the
:class:`~vadlib.methods.base.Method` adapters)."""
