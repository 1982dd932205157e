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
        normal = [p["normal"]] if isinstance(p["normal"], str) else list(p["normal"])
        anomaly = p["anomaly"]
        if isinstance(anomaly, str):
            anomaly = [anomaly]
        if not isinstance(anomaly, Mapping):
            anomaly = {f"prompt{i}": t for i, t in enumerate(anomaly)}
        anomaly = {str(k): str(v) for k, v in anomaly.items()}
        if not normal or not anomaly:
            raise ConfigError(f"{where}: normal and anomaly prompt lists must not be empty")
        tmpl = list(templates) if templates else list(p.get("templates", DEFAULT_TEMPLATES))
        for t in tmpl:
            if t.count("{}") != 1:
                raise ConfigError(f"{where}: template {t!r} must contain exactly one '{{}}'")
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
