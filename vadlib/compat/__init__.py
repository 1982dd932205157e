"""Compatibility with published code and artifacts: importers of published checkpoints (their key
mapping written out) and the reference-mode switches that make vadlib compute exactly what a
reference implementation computes, flaws included.

One module per reference: ``zanella`` (lucazanella/AnomalyCLIP), ``zhou`` (zqhang/AnomalyCLIP,
object-agnostic prompts + DPAM), ``aivad`` (talreiss/Accurate-Interpretable-VAD).
"""
