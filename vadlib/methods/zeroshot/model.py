"""CLIP zero-shot scoring (methods.md §4.1 and the §2 score ``S(t)``).

For frame features ``f_t`` (L2-normalised) and prompt text features:

* ``max_cos``: ``S(t) = max_i cos(f_t, T_i)`` over the dataset's semantic anomaly prompts;
* ``softmax``: ``p_t = softmax([cos(f_t, N_j); cos(f_t, A_i)] / tau)``, score
  ``a_t = sum_i p_t(A_i) = 1 - p_t(normal)``; tau = 0.01 is CLIP's logit scale 100;
* per frame the predicted class: ``normal`` if ``p_t(normal) >= max_i p_t(A_i)`` else the
  anomaly prompt's class, and which anomaly prompt fired (``argmax_i cos(f_t, A_i)``).

Class probabilities are C-way: column 0 sums the normal prompts, then one column per anomaly
class (prompts of the same class are summed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vadlib.features.store import average_crops
from vadlib.prompts.text import PromptEmbeddings, PromptSet

SCORES = ("softmax", "max_cos")


@dataclass
class ZeroShotOutput:
    """Per-row outputs for one video: all ``(N,)`` except ``class_probs (N, C)``."""

    softmax: np.ndarray
    max_cos: np.ndarray
    fired: np.ndarray
    class_probs: np.ndarray


class ZeroShotScorer:
    """Scores frame (or clip) features against a :class:`PromptSet` along the backbone's text path:
    its text tower (CLIP, ActionCLIP), or X-CLIP's video-conditioned prompt generator, which needs
    each row's visual tokens (``aux``; :class:`~vadlib.prompts.text.PromptEmbeddings`)."""

    def __init__(self, backbone, prompts: PromptSet, tau: float = 0.01,
                 text: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``text``: the prompts already encoded, ``(normal (Kn, D), anomaly (Ka, D))`` (then ``backbone``
        is not used; a saved zero-shot method)."""
        self.prompts = prompts
        self.tau = float(tau)
        self._kn = len(prompts.normal)
        self.embeddings = (PromptEmbeddings(backbone, [*prompts.normal, *prompts.anomaly.values()], prompts.templates)
                           if text is None else PromptEmbeddings.from_text(torch.cat([text[0], text[1]])))
        self.text_path = self.embeddings.text_path
        self.normal_text = self.embeddings.text[:self._kn]       # (Kn, D) text tower
        self.anomaly_text = self.embeddings.text[self._kn:]      # (Ka, D)
        self.class_names = ["normal", *dict.fromkeys(prompts.anomaly_names)]
        col = {c: i for i, c in enumerate(self.class_names)}
        self._cls_of_prompt = np.array([col[c] for c in prompts.anomaly_names])

    @property
    def needs_aux(self) -> bool:
        """True when :meth:`score` needs the rows' aux array (X-CLIP)."""
        return self.embeddings.needs_aux

    @torch.no_grad()
    def score(self, feats: np.ndarray | torch.Tensor, aux: np.ndarray | None = None) -> ZeroShotOutput:
        """``feats (N, D)`` raw or normalised image / clip features (``aux (N, P, D)``: X-CLIP's prompt
        tokens, when :attr:`needs_aux`) → :class:`ZeroShotOutput`."""
        x = average_crops(torch.as_tensor(np.asarray(feats), dtype=torch.float32))
        cos = self.embeddings.cosine(x, aux)     # (N, Kn + Ka)
        cos_n, cos_a = cos[:, :self._kn], cos[:, self._kn:]
        logits = torch.cat([cos_n, cos_a], dim=1) / self.tau
        p = torch.softmax(logits, dim=1)
        kn = cos_n.shape[1]
        p_normal = p[:, :kn].sum(1)
        p_anom = p[:, kn:]
        probs = np.zeros((x.shape[0], len(self.class_names)), np.float32)
        probs[:, 0] = p_normal.numpy()
        for j, c in enumerate(self._cls_of_prompt):
            probs[:, c] += p_anom[:, j].numpy()
        return ZeroShotOutput(
            softmax=p_anom.sum(1).numpy().astype(np.float32),  # = 1 - p(normal), without cancellation
            max_cos=cos_a.max(1).values.numpy().astype(np.float32),
            fired=cos_a.argmax(1).numpy().astype(np.int64),
            class_probs=probs,
        )


def predict_store(store, scorer: ZeroShotScorer, videos) -> dict:
    """Zero-shot predictions for ``videos`` (``Video`` records) from a feature store.

    Returns ``{"softmax": Predictions, "max_cos": Predictions}``: per-frame scores of each
    variant, with the C-way class probabilities and the anomaly prompt that fired, expanded
    from feature rows to every frame.
    """
    from vadlib.errors import DataError
    from vadlib.features.store import expand_to_frames as _expand
    from vadlib.results import Predictions, VideoScores

    preds = {name: Predictions(class_names=scorer.class_names,
                               meta={"method": "zeroshot", "score": name, "tau": scorer.tau,
                                     "text_path": scorer.text_path})
             for name in SCORES}
    for v in videos:
        if not store.has(v.name):
            raise DataError(store.path, f"feature store has no features for video '{v.name}'")
        n = store.num_frames(v.name)
        v.check_labels(n)
        out = scorer.score(store.load(v.name), store.load_aux(v.name) if scorer.needs_aux else None)
        fi = store.frame_index(v.name)
        probs = _expand(out.class_probs, fi, n)
        fired = _expand(out.fired, fi, n)
        for name in SCORES:
            preds[name].videos[v.name] = VideoScores(scores=_expand(getattr(out, name), fi, n),
                                                     class_probs=probs, fired=fired)
    return preds
