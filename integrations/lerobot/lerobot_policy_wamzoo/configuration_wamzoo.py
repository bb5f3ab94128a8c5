"""``WamzooConfig``: the LeRobot configuration of a wamzoo policy (``--policy.type=wamzoo``).

Exactly one source of the model:

- ``--policy.recipe=NAME`` (``--policy.overrides='[key=value, ...]'``): a fresh policy of that wamzoo recipe,
  built for the LeRobot dataset's cameras, state, actions, tasks and statistics (``lerobot-train``);
- ``--policy.pretrained=NAME_OR_FOLDER``: a wamzoo policy as ``wamzoo.load`` takes it (a pretrained name,
  ``hf-hub:org/repo``, a folder written by wamzoo; ``lerobot-eval`` or fine-tuning);
- a folder this plugin saved (``--policy.path=...``): ``wamzoo`` holds the composed wamzoo configuration.

The window (``horizon``, ``n_obs``, ``n_future``, ``frame_stride``) comes from the recipe or the policy and sets
LeRobot's delta indices. Normalisation happens inside the wamzoo policy with the modes its recipe chose (its
statistics are buffers saved with the weights), so LeRobot's normaliser steps are identity by default and a
checkpoint gives the same actions in both tools.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig


@functools.lru_cache(maxsize=4)
def load_pretrained(ref: str):
    """``wamzoo.load(ref)``, once per process (the configuration reads its window, the policy its weights)."""
    import wamzoo

    return wamzoo.load(ref)


class WamzooConfigError(ValueError):
    """A ``--policy.*`` setting of the wamzoo plugin that cannot work; the message names the fix."""


@PreTrainedConfig.register_subclass("wamzoo")
@dataclass
class WamzooConfig(PreTrainedConfig):
    recipe: str | None = None
    overrides: list[str] = field(default_factory=list)
    pretrained: str | None = None
    #: LeRobot image keys fed to the policy's views, in its camera order (empty: ``observation.images.<camera>``
    #: of the policy's cameras, else the batch's image keys in order when their number fits).
    image_keys: list[str] = field(default_factory=list)
    #: Resize frames of another size to the policy's (antialiased bilinear, as ``wamzoo data --lerobot-env``).
    resize_images: bool = True
    #: Actions of each chunk executed before the next call (None: the whole chunk).
    n_action_steps: int | None = None
    #: Noise seed of each chunk (wamzoo's default 0: reproducible); None draws from torch's generator.
    seed: int | None = 0
    horizon: int | None = None
    n_obs: int | None = None
    n_future: int | None = None
    frame_stride: int | None = None
    optimizer_lr: float | None = None
    optimizer_weight_decay: float | None = None
    optimizer_grad_clip_norm: float | None = None
    #: The composed wamzoo configuration (JSON: ``policy`` and ``data``), filled when the model is built.
    wamzoo: str = ""
    wamzoo_version: str = ""
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=lambda: {
        "VISUAL": NormalizationMode.IDENTITY, "STATE": NormalizationMode.IDENTITY,
        "ACTION": NormalizationMode.IDENTITY})

    def __post_init__(self):
        super().__post_init__()
        import wamzoo

        self.wamzoo_version = self.wamzoo_version or wamzoo.__version__
        if not self.wamzoo and (self.recipe is None) == (self.pretrained is None):
            raise WamzooConfigError("name the wamzoo model: --policy.recipe=NAME (a recipe to train, `wamzoo list"
                                    " --recipes`) or --policy.pretrained=NAME_OR_FOLDER (a trained policy, `wamzoo"
                                    " list --pretrained`), exactly one of them")
        if self.horizon is None:
            self._fill_from_wamzoo()

    def _fill_from_wamzoo(self) -> None:
        """Window and optimiser settings from the recipe, the pretrained policy or the saved configuration."""
        if self.wamzoo:
            data, trainer = json.loads(self.wamzoo)["data"], {}
        elif self.recipe is not None:
            from wamzoo.recipes import compose

            recipe = compose(self.recipe, self.overrides)
            data, trainer = recipe.data, vars(recipe.trainer)
        else:
            data, trainer = load_pretrained(self.pretrained).config["data"], {}
        self.horizon = int(data.get("horizon", 16))
        self.n_obs, self.n_future = int(data.get("n_obs", 1)), int(data.get("n_future", 0))
        self.frame_stride = int(data.get("frame_stride", 1))
        self.optimizer_lr = self.optimizer_lr or trainer.get("lr", 1e-4)
        self.optimizer_weight_decay = (self.optimizer_weight_decay if self.optimizer_weight_decay is not None
                                       else trainer.get("weight_decay", 0.01))
        self.optimizer_grad_clip_norm = self.optimizer_grad_clip_norm or trainer.get("grad_clip", 1.0)

    # -- LeRobot's contract ------------------------------------------------------------------
    @property
    def observation_delta_indices(self) -> list[int] | None:
        if self.n_obs == 1 and self.n_future == 0:
            return None
        return [i * self.frame_stride for i in range(-(self.n_obs - 1), self.n_future + 1)]

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.horizon))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay, betas=(0.9, 0.95),
                           grad_clip_norm=self.optimizer_grad_clip_norm)

    def get_scheduler_preset(self) -> None:
        return None

    def validate_features(self) -> None:
        if not self.image_features:
            raise WamzooConfigError("a wamzoo policy reads camera frames, and the dataset or env gives no image"
                                    " feature (observation.images.* or observation.image)")
