"""Text prompts shared by the methods, ``vadlib search`` and ``vadlib detect``: ``text`` (prompt sets,
the prompt-list parser, CLIP text encoding) and ``learning`` (learned prompt contexts, CoOp style).
A package of its own, below :mod:`vadlib.methods`, so that zeroshot, transfer, AnomalyCLIP and search
all import it without a cycle."""
