"""Text prompts: per-dataset prompt sets from ``params.yaml`` and their CLIP text features.

A prompt set has *normal* prompts and *anomaly* prompts; each anomaly prompt belongs to a
class (``{"cyclist": "a person riding a bicycle on the walkway"}``). Each prompt is expanded
with templates (``"a surveillance camera frame of {}."``), encoded, L2-normalised and
averaged over templates, then re-normalised (a prompt ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from vadlib.errors import ConfigError

DEFAULT_TEMPLATES = ("{}.", "a photo of {}.", "a surveillance camera frame of {}.")
SEPARATOR = ";;"

#: named template sets: ``templates: actionclip`` in params.yaml (or ``templates=["actionclip"]``) selects
#: ActionCLIP's 16 Kinetics templates; the targets are imported on first use ("module:attribute")
TEMPLATE_SETS: dict[str, str] = {
    "default": "vadlib.prompts.text:DEFAULT_TEMPLATES",
    "actionclip": "vadlib.features.backbones.actionclip:ACTIONCLIP_TEMPLATES",
}


def resolve_templates(value, where: str = "templates") -> list[str]:
    """Templates as a list of format strings with one ``{}`` each.

    ``value``: a list of templates, or the name of a set in :data:`TEMPLATE_SETS` (``"actionclip"``), as a
    string or a one-element list; None / empty = :data:`DEFAULT_TEMPLATES`. Raises :class:`ConfigError`
    naming ``where`` for an unknown name or a template without exactly one ``{}``.
    """
    import importlib

    if value is None or (isinstance(value, (list, tuple)) and not value):
        return list(DEFAULT_TEMPLATES)
    if isinstance(value, (list, tuple)) and len(value) == 1 and value[0] in TEMPLATE_SETS:
        value = value[0]
    if isinstance(value, str):
        if value not in TEMPLATE_SETS:
            raise ConfigError(f"`{where}`: unknown template set '{value}'; known: {', '.join(TEMPLATE_SETS)} "
                              "(or give a list of templates, each with exactly one '{}')")
        module, _, attr = TEMPLATE_SETS[value].partition(":")
        value = getattr(importlib.import_module(module), attr)
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ConfigError(f"`{where}` must be a list of templates or a template set name, got {value!r}")
    for t in value:
        if t.count("{}") != 1:
            raise ConfigError(f"`{where}`: template {t!r} must contain exactly one '{{}}' "
                              f"(or name a template set: {', '.join(TEMPLATE_SETS)})")
    return list(value)


def prompt_list(value, where: str = "prompts", allow_empty: bool = False) -> list[str]:
    """Descriptions as a list of stripped, non-empty strings: the one parser of every prompt list.

    ``value`` is a list/tuple of strings, or a string: a YAML/JSON list (``'["a", "b"]'``, as
    ``papermill -p`` passes a list) or descriptions separated by ``;;`` (one description when there is
    no separator; empty pieces are dropped). An empty list is refused unless ``allow_empty``. Raises
    :class:`ConfigError` naming ``where`` otherwise.
    """
    if isinstance(value, str):
        if value.strip().startswith("["):
            import yaml

            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ConfigError(f"`{where}`: not a list ({exc}): {value!r}") from exc
        else:
            value = [p for p in value.split(SEPARATOR) if p.strip()] or [value]
    if not isinstance(value, (list, tuple)) or not (value or allow_empty) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ConfigError(f"`{where}` must be a non-empty list of descriptions, got {value!r}")
    return [p.strip() for p in value]


def anomaly_prompts(value, where: str = "prompts", name=lambda i, text: f"prompt{i}") -> dict[str, str]:
    """Anomaly prompts as ``{class: description}``: a mapping as is, or a :func:`prompt_list` whose
    entries are named ``name(i, text)``."""
    if isinstance(value, Mapping):
        out = {str(k): str(v) for k, v in value.items()}
        if not out:
            raise ConfigError(f"{where}: the anomaly prompts must not be empty")
        return out
    return {name(i, t): t for i, t in enumerate(prompt_list(value, where))}


@dataclass
class PromptSet:
    """Normal prompts and anomaly prompts (class name -> description).

    Attributes:
        normal: descriptions of normal scenes.
        anomaly: ordered mapping class name -> description.
        templates: format strings with one ``{}``.
    """

    normal: list[str]
    anomaly: dict[str, str]
    templates: list[str] = field(default_factory=lambda: list(DEFAULT_TEMPLATES))

    @classmethod
    def from_params(cls, p: Mapping, templates: Sequence[str] | None = None, where: str = "prompts") -> "PromptSet":
        """Build from ``{"normal": [...], "anomaly": {name: text} | [text, ...]}``."""
        if not isinstance(p, Mapping) or "normal" not in p or "anomaly" not in p:
            raise ConfigError(f"{where}: needs 'normal' (list of texts) and 'anomaly' "
                              "(mapping class -> text, or list of texts)")
        normal = prompt_list(p["normal"], f"{where}.normal")
        anomaly = anomaly_prompts(p["anomaly"], f"{where}.anomaly")
        tmpl = resolve_templates(templates if templates else p.get("templates", DEFAULT_TEMPLATES), f"{where}.templates")
        return cls(normal=normal, anomaly=anomaly, templates=tmpl)

    @property
    def anomaly_names(self) -> list[str]:
        return list(self.anomaly)

    @property
    def texts(self) -> list[str]:
        """All prompts, normal first: ``[*normal, *anomaly.values()]``."""
        return [*self.normal, *self.anomaly.values()]


def encode_prompts(backbone, texts: Sequence[str], templates: Sequence[str] = ("{}",)) -> torch.Tensor:
    """Texts → ``(K, D)`` L2-normalised ensemble embeddings (mean over templates)."""
    out = []
    for text in texts:
        variants = [t.format(text.rstrip(".")) for t in templates]
        emb = backbone.encode_text(variants, normalize=True).float()
        out.append(torch.nn.functional.normalize(emb.mean(0), dim=-1))
    return torch.stack(out)


def encode_prompts_raw(backbone, texts: Sequence[str], templates: Sequence[str] = ("{}",)) -> torch.Tensor:
    """Texts → ``(K, D)`` *raw* (unnormalised) text-tower embeddings, averaged over templates: what
    X-CLIP's prompt generator takes (``XCLIPModel.forward``'s ``text_embeds`` before conditioning)."""
    out = []
    for text in texts:
        variants = [t.format(text.rstrip(".")) for t in templates]
        out.append(backbone.encode_text(variants, normalize=False).float().mean(0))
    return torch.stack(out)


class PromptEmbeddings:
    """Prompt embeddings scored along the backbone's text path (:mod:`vadlib.features.backbones.base`).

    * ``"text tower"`` (CLIP, ActionCLIP): :attr:`text` ``(K, D)`` (:func:`encode_prompts`), one set
      for every row; ``cosine(feats)``.
    * ``"video-conditioned prompt generator"`` (X-CLIP): per row, the raw ensemble embeddings
      (:func:`encode_prompts_raw`) shifted by the prompt generator over that row's visual tokens
      (the feature store's aux array): ``cosine(feats, aux)``. :attr:`text` (the unconditioned text
      tower) remains for what has no tokens (e.g. heat maps).
    """

    def __init__(self, backbone, texts: Sequence[str], templates: Sequence[str] = ("{}",)):
        from vadlib.features.backbones.base import PROMPT_GENERATOR, text_path_of

        self.backbone = backbone
        self.text_path = text_path_of(backbone)
        self.text = encode_prompts(backbone, texts, templates)                      # (K, D) normalised
        self.raw = (encode_prompts_raw(backbone, texts, templates) if self.text_path == PROMPT_GENERATOR
                    else None)

    @classmethod
    def from_text(cls, text: torch.Tensor) -> "PromptEmbeddings":
        """Prompts already encoded by a text tower, ``text (K, D)`` L2-normalised (a saved zero-shot
        method, which holds no backbone): scored along the text-tower path only."""
        from vadlib.features.backbones.base import TEXT_TOWER

        self = cls.__new__(cls)
        self.backbone, self.text_path, self.raw = None, TEXT_TOWER, None
        self.text = torch.nn.functional.normalize(torch.as_tensor(text, dtype=torch.float32), dim=-1)
        return self

    @property
    def needs_aux(self) -> bool:
        """True when scoring needs each row's aux array (X-CLIP's prompt tokens)."""
        return self.raw is not None

    @torch.no_grad()
    def cosine(self, feats, aux=None, chunk: int = 256) -> torch.Tensor:
        """``feats (N, D)`` (raw or normalised) [+ ``aux (N, P, D)``] → ``(N, K)`` float32 cosines."""
        x = torch.nn.functional.normalize(torch.as_tensor(feats, dtype=torch.float32), dim=-1)
        if not self.needs_aux:
            return x @ self.text.T
        if aux is None:
            raise ConfigError(f"{self.backbone.name}: prompts are scored by the {self.text_path}, which needs each "
                              "clip's visual tokens (the feature store's aux array); re-extract the features with "
                              "this backbone")
        aux = torch.as_tensor(aux, dtype=torch.float32)
        if len(aux) != len(x):
            raise ConfigError(f"cosine: {len(x)} feature rows but {len(aux)} aux rows")
        out = []
        for i in range(0, len(x), chunk):
            cond = self.backbone.condition_text(self.raw, aux[i:i + chunk]).float().cpu()   # (n, K, D)
            out.append(torch.einsum("nd,nkd->nk", x[i:i + chunk], cond))
        return torch.cat(out) if out else x.new_zeros((0, len(self.raw)))
