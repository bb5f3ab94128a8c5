"""The exponential moving average of a run's trained weights (Polyak averaging, as Diffusion Policy
evaluates with, Chi et al. 2023, Sec. IV-C): with ``trainer.ema`` set, checkpoints carry it and the
run is evaluated, exported and used as ``trainer.init_from`` with it.

After optimiser step ``s`` every trainable weight ``w`` moves its average by
``ema <- ema + (1 - d) (w - ema)`` with ``d = min(decay, (1 + s) / (10 + s))``, so the first steps'
random weights are forgotten fast.
"""

from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch
from torch import Tensor

#: The checkpoint entry: ``{"decay": float, "weights": {state-dict key: tensor}}``.
KEY = "ema"


class EMA(L.Callback):
    """Keeps the average of ``pl_module.policy``'s trainable weights; saved in and restored from checkpoints."""

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"trainer.ema is the average's decay, within (0, 1) (e.g. 0.999); got {decay}")
        self.decay = decay
        self.weights: dict[str, Tensor] | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.weights is None:
            self.weights = {f"policy.{n}": p.detach().clone() for n, p in pl_module.policy.named_parameters()
                            if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        decay = min(self.decay, (1 + step) / (10 + step))
        live = dict(pl_module.named_parameters())
        names = list(self.weights)
        torch._foreach_lerp_([self.weights[n] for n in names], [live[n].detach() for n in names], 1.0 - decay)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = {"decay": self.decay, "weights": {n: t.clone() for n, t in self.weights.items()}}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if KEY in checkpoint:
            self.weights = {n: t.clone() for n, t in checkpoint[KEY]["weights"].items()}


def averaged(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The checkpoint's state dict with its moving average in place of the trained weights, if it has one."""
    state = dict(checkpoint["state_dict"])
    state.update((checkpoint.get(KEY) or {}).get("weights", {}))
    return state
