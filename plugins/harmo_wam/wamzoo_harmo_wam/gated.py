"""HarmoWAM's action side: a predictive and a reactive expert behind a process-adaptive gate.

HarmoWAM (method overview): the predictive expert (:mod:`~wamzoo_harmo_wam.predictive`, flow
matching) and the reactive expert (:mod:`~wamzoo_harmo_wam.reactive`, inverse dynamics) both read
the world model's latent; the gate (:mod:`~wamzoo_harmo_wam.gate`) picks one of them per sample.
Stage 2 trains ``L = L_pred + 0.1 L_react + 0.05 L_gate`` (the policy's ``loss_weights`` for
``action``, ``react`` and ``gate``).

``combine`` selects the variant: ``"gate"`` (HarmoWAM: hard switch at ``threshold``), ``"soft"``
(gate-weighted average, the paper's averaging ablation), ``"mean"`` (plain average),
``"predictive"`` or ``"reactive"`` (one expert alone). A variant computes and trains only the parts
it uses. With the hard switch each sample runs exactly one expert: the coupling asks
:meth:`HarmoActionExpert.route` which samples go where, computes the reactive chunk only for its
samples and integrates the predictive flow only for the others.

Streams: ``action`` (denoised, the predictive expert's chunk); at inference also
``action.reactive`` (the reactive chunk) and ``gate`` (the score ``s``, ``[B, 1]``), neither
denoised, filled by the coupling before the action steps.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from wamzoo.batch import Batch, BatchError
from wamzoo.composition import caps
from wamzoo.interfaces import ActionExpert, Conditioning, Stream

from wamzoo_harmo_wam.coupling import Imagination
from wamzoo_harmo_wam.gate import ProcessGate, mix
from wamzoo_harmo_wam.predictive import PredictiveExpert
from wamzoo_harmo_wam.reactive import ReactiveExpert

COMBINES = ("gate", "soft", "mean", "predictive", "reactive")
REACTIVE, GATE = "action.reactive", "gate"
_PARTS = {"gate": ("predictive", "reactive", "gate"), "soft": ("predictive", "reactive", "gate"),
          "mean": ("predictive", "reactive"), "predictive": ("predictive",), "reactive": ("reactive",)}


class HarmoActionExpert(ActionExpert):
    """Predictive + reactive experts and the process-adaptive gate.

    Args:
        action_dim, horizon, state_dim, num_views, context_dim: filled from the data and context.
        latent_dim: width of the world model's latent (its ``dim``).
        combine: ``"gate"`` | ``"soft"`` | ``"mean"`` | ``"predictive"`` | ``"reactive"`` (see module doc).
        contact_expert: the expert used in contact phases (``s > threshold``); the other acts elsewhere.
        threshold: the hard switch's threshold on ``s``.
        label_key: ``batch.extras`` key of the gate labels (per sample, 0/1).
        predictive: arguments of :class:`PredictiveExpert` (``dim``, ``num_layers``, ...).
        reactive: arguments of :class:`ReactiveExpert` (``backbone``, ``future_frames``, ...).
        gate: arguments of :class:`ProcessGate` (``hidden``, ``use_state``).
    """

    streams_produced = ("action",)
    provides = caps("latent-reader")

    def __init__(self, action_dim: int, horizon: int, latent_dim: int, context_dim: int, state_dim: int = 0,
                 num_views: int = 1, combine: str = "gate", contact_expert: str = "reactive", threshold: float = 0.5,
                 label_key: str = "contact", predictive: Mapping[str, Any] | None = None,
                 reactive: Mapping[str, Any] | None = None, gate: Mapping[str, Any] | None = None):
        super().__init__()
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}")
        if contact_expert not in ("reactive", "predictive"):
            raise ValueError(f"contact_expert must be 'reactive' or 'predictive', got {contact_expert!r}")
        self.action_dim, self.horizon = action_dim, horizon
        self.combine, self.contact_expert, self.threshold = combine, contact_expert, threshold
        self.label_key = label_key
        self.predictive = PredictiveExpert(action_dim, latent_dim, context_dim, **dict(predictive or {}))
        self.reactive = ReactiveExpert(action_dim, horizon, latent_dim, num_views, **dict(reactive or {}))
        self.gate = ProcessGate(latent_dim, state_dim, **dict(gate or {}))

    def uses(self, part: str) -> bool:
        """Whether the current ``combine`` runs ``part`` (``predictive``, ``reactive`` or ``gate``)."""
        return part in _PARTS[self.combine]

    def wants_imagination(self, streams: Mapping[str, Stream], cond: Conditioning) -> bool:
        """Whether this training pass needs the world model's latent (some used part has a loss)."""
        return ((self.uses("predictive") and cond.needs("action")) or
                (self.uses("reactive") and cond.needs("react")) or (self.uses("gate") and cond.needs("gate")))

    # -- streams ----------------------------------------------------------------------------
    def make_streams(self, batch: Batch, cond: Conditioning, train: bool) -> dict[str, Stream]:
        B, K, A = batch.batch_size, self.horizon, self.action_dim
        if train:
            if batch.action.shape[1:] != (K, A):
                raise ValueError(f"action chunk {tuple(batch.action.shape[1:])} does not match the expert's"
                                 f" (horizon={K}, action_dim={A})")
            x, pad = batch.action.float(), batch.action_pad
        else:
            x, pad = batch.rgb.new_zeros(B, K, A, dtype=torch.float32), None
        device = x.device
        streams = {"action": Stream(x=x, cond=torch.zeros(B, K, dtype=torch.bool, device=device), group="action",
                                    pad=pad)}
        if not train:
            streams[REACTIVE] = Stream(x=torch.zeros_like(x), cond=torch.ones(B, K, dtype=torch.bool, device=device),
                                       group=REACTIVE, denoised=False)
            streams[GATE] = Stream(x=torch.zeros(B, 1, device=device), cond=torch.ones(B, 1, dtype=torch.bool,
                                                                                      device=device),
                                   group=GATE, denoised=False)
        return streams

    def embed(self, streams, cond):
        return []  # reads the world model's latent by cross-attention; joins no shared attention

    # -- experts ----------------------------------------------------------------------------
    def predictive_velocity(self, action: Stream, imagination, cond: Conditioning,
                            rows: Tensor | None = None) -> Tensor:
        """Velocity of the ``action`` stream (zero outside ``rows`` ``[B]`` when given)."""
        if not self.uses("predictive") or (rows is not None and not bool(rows.any())):
            return torch.zeros_like(action.x)
        sel = slice(None) if rows is None or bool(rows.all()) else rows
        ctx = None if cond.context is None else cond.context[sel]
        ctx_mask = None if cond.context_mask is None else cond.context_mask[sel]
        v = self.predictive(action.x[sel], action.t[sel], imagination.latent.tokens[sel], ctx, ctx_mask)
        if isinstance(sel, slice):
            return v
        out = torch.zeros_like(action.x)
        out[rows] = v.to(out)
        return out

    def reactive_actions(self, imagination, rows: Tensor | None = None) -> Tensor:
        sel = slice(None) if rows is None else rows
        return self.reactive(imagination.current[sel], imagination.future(self.reactive.future_frames)[sel],
                             imagination.latent.pooled()[sel])

    def gate_logits(self, imagination, cond: Conditioning) -> Tensor:
        return self.gate(imagination.latent.pooled_obs(), cond.state)

    def route(self, streams: Mapping[str, Stream], imagination, cond: Conditioning) -> Tensor:
        """Inference: fill ``gate`` and ``action.reactive``; returns the samples ``[B]`` the predictive
        expert serves."""
        B = streams["action"].batch_size
        device = streams["action"].x.device
        everyone, nobody = torch.ones(B, dtype=torch.bool, device=device), torch.zeros(B, dtype=torch.bool,
                                                                                        device=device)
        if self.uses("gate"):
            streams[GATE].x = torch.sigmoid(self.gate_logits(imagination, cond))[:, None]
        if self.combine == "gate":
            contact = streams[GATE].x[:, 0] > self.threshold
            reactive = contact if self.contact_expert == "reactive" else ~contact
        else:
            reactive = everyone if self.uses("reactive") else nobody
        predictive = ~reactive if self.combine == "gate" else (everyone if self.uses("predictive") else nobody)
        if reactive.any():
            out = torch.zeros_like(streams[REACTIVE].x)
            out[reactive] = self.reactive_actions(imagination, reactive).to(out)
            streams[REACTIVE].x = out
        return predictive

    def actions(self, streams: Mapping[str, Stream]) -> Tensor:
        pred = streams["action"].x
        if self.combine == "predictive":
            return pred
        react = streams[REACTIVE].x
        if self.combine == "reactive":
            return react
        contact, free = (react, pred) if self.contact_expert == "reactive" else (pred, react)
        return mix(contact, free, streams[GATE].x[:, 0], self.combine, self.threshold)

    # -- training ---------------------------------------------------------------------------
    def extra_losses(self, batch, streams, outputs, cond):
        imagination = cond.get(Imagination)
        if imagination is None:  # the coupling ran no action side (stage 1)
            return {}
        action = streams["action"]
        target = action.x0 if action.x0 is not None else action.x
        valid = None if action.pad is None else ~action.pad
        losses = {}
        if self.uses("reactive") and cond.needs("react"):
            losses["react"] = self.reactive.loss(self.reactive_actions(imagination), target, valid)
        if self.uses("gate") and cond.needs("gate"):
            if self.label_key not in batch.extras:
                raise BatchError(f"the gate is trained on batch.extras[{self.label_key!r}] (1 near a gripper change),"
                                 f" which this dataset does not provide (extras: {sorted(batch.extras)}); derive it"
                                 " with wamzoo_harmo_wam.gate.contact_labels from each episode's gripper trace")
            labels = batch.extras[self.label_key].reshape(-1).to(target.device)
            losses["gate"] = self.gate.loss(self.gate_logits(imagination, cond), labels)
        return losses

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}, contact_expert={self.contact_expert!r}, threshold={self.threshold}"
