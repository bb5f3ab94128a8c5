"""HarmoWAM's process-adaptive gate: which expert acts, decided from the observation.

HarmoWAM (process-adaptive gate): a small MLP over observation features outputs a score ``s``
trained with binary cross-entropy against labels derived from the demonstrations: 1 within
``±k`` frames (paper: 20) of a change of the gripper state (contact phases), else 0. At inference
the switch is hard: ``s > 0.5`` selects one expert (the paper's ablation found averaging the two
experts worse); soft averaging is kept for that ablation.

- :func:`contact_labels`: labels of one episode from its gripper trace (Meta-World: the 4th action
  dimension, the grab effort, or the state's gripper opening); :func:`episode_contact` hands them
  to a dataset's per-step extras;
- :class:`ProcessGate`: the MLP; here its observation features are the world model's latent pooled
  over the current frame (layer-normalised), concatenated with the normalised proprioception;
- :func:`mix`: the hard switch (``"gate"``), the gate-weighted average (``"soft"``) or the plain
  mean (``"mean"``) of the two experts' chunks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wamzoo.nn.dit import FP32LayerNorm

MIXES = ("gate", "soft", "mean")


def contact_labels(gripper, k: int = 20, threshold: float = 0.0) -> np.ndarray:
    """Per-step labels ``[T]`` (float32): 1 within ``±k`` steps of a gripper open/close change.

    ``gripper`` ``[T]`` is the episode's gripper trace; it is closed where ``gripper > threshold``
    (Meta-World's grab effort: ``> 0`` closes). A change happens at step ``c`` when the state at
    ``c`` differs from the state at ``c - 1``; steps ``t`` with ``|t - c| <= k`` are labelled 1.

    >>> contact_labels([0, 0, 0, 1, 1, 1, 1, 0], k=1).tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    closed = np.asarray(gripper, dtype=np.float64).reshape(-1) > threshold
    T = len(closed)
    changes = np.flatnonzero(closed[1:] != closed[:-1]) + 1
    labels = np.zeros(T, dtype=np.float32)
    for c in changes:
        labels[max(0, c - k): min(T, c + k + 1)] = 1.0
    return labels


def episode_contact(columns, k: int = 20, source: str = "action", dim: int = 3, threshold: float = 0.0) -> np.ndarray:
    """Gate labels of one episode for a dataset's per-step extras (``data.extras``).

    ``columns`` holds the episode's ``action`` ``[T, A]`` and ``state`` ``[T, S]``; the gripper trace
    is ``columns[source][:, dim]`` (Meta-World: the grab effort, action dimension 3).

    >>> data.extras: {contact: {fn: "wamzoo_harmo_wam.gate:episode_contact", k: 20}}   # doctest: +SKIP
    """
    return contact_labels(np.asarray(columns[source])[:, dim], k, threshold)


class ProcessGate(nn.Module):
    """MLP from observation features to the contact-phase logit.

    Args:
        feature_dim: width of the observation features (the world model's latent width).
        state_dim: proprioception width (0 or ``use_state=False``: not read).
        hidden: MLP width.
        use_state: concatenate the normalised proprioception to the features.
    """

    def __init__(self, feature_dim: int, state_dim: int = 0, hidden: int = 64, use_state: bool = True):
        super().__init__()
        self.use_state = bool(use_state and state_dim)
        self.norm = FP32LayerNorm(feature_dim)  # the latent's scale is the world model's; the state is normalised
        self.mlp = nn.Sequential(nn.Linear(feature_dim + (state_dim if self.use_state else 0), hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, features: Tensor, state: Tensor | None = None) -> Tensor:
        """Logits ``[B]``; ``sigmoid`` gives the contact-phase score ``s``."""
        x = self.norm(features.float())
        if self.use_state:
            if state is None:
                raise ValueError("this gate reads proprioception (use_state=True) but the batch has no `state`")
            x = torch.cat([x, state.float()], -1)
        return self.mlp(x)[:, 0]

    @staticmethod
    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def mix(contact: Tensor, free: Tensor, score: Tensor, how: str = "gate", threshold: float = 0.5) -> Tensor:
    """Combine the contact-phase expert's and the free-motion expert's chunks ``[B, K, A]`` by ``score`` ``[B]``.

    ``"gate"``: ``contact`` where ``score > threshold`` else ``free`` (per sample); ``"soft"``:
    ``score * contact + (1 - score) * free``; ``"mean"``: ``(contact + free) / 2``.
    """
    if how == "gate":
        return torch.where((score > threshold)[:, None, None], contact, free)
    if how == "soft":
        w = score.to(contact)[:, None, None]
        return w * contact + (1 - w) * free
    if how == "mean":
        return (contact + free) / 2
    raise ValueError(f"unknown mix {how!r}; choose one of {', '.join(MIXES)}")
