"""The four interfaces of a World Action Model, plus the observation codec.

A WAM is composed of

- a :class:`WorldModel`, which owns the observation streams (video latents, optional depth) and
  exposes the context that actions are generated from;
- an :class:`ActionExpert`, which owns the action streams (actions, optionally future states);
- a :class:`Coupling`, which decides how the two exchange information (a shared masked attention,
  cross-attention to a latent, a routed cache, ...) and runs the network over all streams;
- a :class:`Scheduler`, which samples training timesteps per stream (independent, coupled,
  per chunk) and plans inference (which streams are denoised, in how many steps, in what order).

Everything that is denoised travels as a :class:`Stream`: a tensor of *units* (latent frames,
action steps) with a per-unit timestep, a conditioning mask (clean units at ``t = 0``, excluded
from the loss) and a padding mask. :class:`wamzoo.policy.WAMPolicy` composes the parts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch
from torch import Tensor, nn

from wamzoo.batch import Batch
from wamzoo.composition import Declares, caps

T = TypeVar("T")


@dataclass
class Stream:
    """A named set of units denoised by flow matching (``x`` is ``[B, U, ...]``)."""

    x: Tensor
    #: ``[B, U]`` True for clean conditioning units (current frame, initial state).
    cond: Tensor
    #: Timestep group: streams of one group share their timesteps (``"obs"``, ``"action"``).
    group: str = "obs"
    #: ``[B, U]`` True for padding units (excluded from the loss).
    pad: Tensor | None = None
    #: Units per independently sampled timestep (``None``: one timestep per sample).
    chunk: int | None = None
    #: ``[B, U]`` flow time of every unit (0 = clean).
    t: Tensor | None = None
    #: Clean values and the noise drawn for them (training only).
    x0: Tensor | None = None
    noise: Tensor | None = None
    #: ``False`` for streams that only condition (never denoised, no loss).
    denoised: bool = True
    #: ``True`` for a stream a head predicts although it is not denoised (a regression readout, e.g.
    #: X-WAM's depth): no flow-matching loss (its component's ``extra_losses`` scores it), and at
    #: inference it is predicted only on request (``WAMPolicy.predict(readouts=True)``).
    readout: bool = False

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    @property
    def units(self) -> int:
        return int(self.x.shape[1])

    def loss_mask(self) -> Tensor:
        mask = ~self.cond
        return mask if self.pad is None else mask & ~self.pad


@dataclass
class Conditioning:
    """What every component may read: a context sequence (task/instruction, proprio token) and the state."""

    context: Tensor | None = None        # [B, L, D_ctx]
    context_mask: Tensor | None = None   # [B, L] bool
    state: Tensor | None = None          # [B, S] normalised proprio
    batch: Batch | None = None
    #: The policy's codec, for components that read pixels of generated latents (not a submodule).
    codec: Codec | None = None
    #: Weights of this training pass's losses (by name; unnamed losses weigh 1).
    loss_weights: dict[str, float] = field(default_factory=dict)
    #: The policy's normaliser, for components that read robot quantities beyond ``state`` and
    #: ``action`` (e.g. proprioception at future steps in ``batch.extras``; not a submodule).
    normalizer: Any = None
    #: The world model's transformer (a :class:`wamzoo.nn.mot.Backbone`), set by the policy when the
    #: action expert requires ``backbone`` (it has no transformer of its own).
    backbone: Any = None
    #: What components hand each other during one pass, keyed by type (see :meth:`put`).
    _typed: dict[type, Any] = field(default_factory=dict, repr=False)
    #: Values computed once per pass (see :meth:`once`).
    _once: dict[Any, Any] = field(default_factory=dict, repr=False)

    def needs(self, loss: str) -> bool:
        """False when ``loss`` (a stream's name or an extra loss) weighs 0 in this pass: a component may then
        skip computing it, and a coupling every token that no needed token attends to."""
        return self.loss_weights.get(loss, 1.0) != 0

    def put(self, value: Any) -> None:
        """Hand ``value`` to the other parts for this pass; they read it with ``get(type(value))``."""
        self._typed[type(value)] = value

    def get(self, kind: type[T]) -> T | None:
        """The value of type ``kind`` a part handed over in this pass (``None`` if none)."""
        return self._typed.get(kind)

    def once(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``key`` is asked for in this pass, the same value after (e.g. an
        expert's embedding of the context, which every denoising step of a call reads)."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]


class Codec(nn.Module, ABC):
    """Pixels ``[B, T, V, 3, H, W]`` in [0, 1] <-> latents ``[B, T', V, C, h, w]``."""

    latent_channels: int
    spatial_factor: int
    temporal_factor: int = 1
    #: Whether :meth:`encode` resizes frames of any size itself (e.g. into a camera canvas); if not, a
    #: policy refuses frames of another size than it was trained on.
    resizes: bool = False

    @abstractmethod
    def encode(self, frames: Tensor) -> Tensor: ...

    @abstractmethod
    def decode(self, latents: Tensor) -> Tensor: ...

    def latent_frames(self, frames: int) -> int:
        """Latent frames produced for ``frames`` pixel frames (causal temporal compression)."""
        return 1 + (frames - 1) // self.temporal_factor if self.temporal_factor > 1 else frames


class _Component(Declares, nn.Module):
    """Shared hooks of the world model and the action expert."""

    def extra_losses(self, batch: Batch, streams: Mapping[str, Stream], outputs: Mapping[str, Tensor],
                     cond: Conditioning) -> dict[str, Tensor]:
        """Losses beyond flow matching on the streams (e.g. a gate's BCE); default none."""
        return {}

    def reset(self) -> None:
        """Forget state kept across ``predict_action`` calls (memories, caches)."""

    # Components that provide ``tokens`` (join a Mixture-of-Transformers attention) implement these two.
    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[Any]:
        """Turn the streams this component owns into ``wamzoo.nn.mot.TokenSet`` s (called once per
        pass, after :meth:`make_streams`, with every stream's current ``x`` and ``t``)."""
        raise NotImplementedError(f"{type(self).__name__} does not take part in a shared attention")

    def head(self, sets: list[Any], hidden: list[Tensor], streams: Mapping[str, Stream]) -> dict[str, Tensor]:
        """Map final hidden states of this component's token sets back to stream velocities."""
        raise NotImplementedError(f"{type(self).__name__} does not take part in a shared attention")


class WorldModel(_Component, ABC):
    """Owns the observation streams (``video``; optionally ``depth``)."""

    #: Observation streams this model can produce, e.g. ``("video", "depth")``.
    streams_produced: tuple[str, ...] = ("video",)
    #: Future latent frames predicted when the video is denoised.
    n_future: int = 0

    def observations(self, batch: Batch) -> dict[str, Tensor]:
        """Pixel tensors ``[B, T, V, 3, H, W]`` in [0, 1] to encode with the codec (default: rgb)."""
        return {"rgb": batch.rgb_float()}

    @abstractmethod
    def make_streams(self, latents: Mapping[str, Tensor], n_obs: int, n_future: int,
                     batch: Batch) -> dict[str, Stream]:
        """Build observation streams from encoded latents.

        ``latents[k]`` is ``[B, T', V, C, h, w]``; its first ``n_obs`` latent frames are observed.
        At training the future latents follow; at inference the future units (``n_future``
        of them, 0 if the video is not generated) must be created as noise.
        """

    def backbone(self, cond: Conditioning) -> Any:
        """The transformer (a :class:`wamzoo.nn.mot.Backbone`) lent to action experts that ride on it
        (those that require ``backbone``); world models that provide ``backbone`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} lends no backbone to action experts")


class ActionExpert(_Component, ABC):
    """Owns the action streams (``action``; optionally ``state``)."""

    streams_produced: tuple[str, ...] = ("action",)
    action_dim: int
    horizon: int

    @abstractmethod
    def make_streams(self, batch: Batch, cond: Conditioning, train: bool) -> dict[str, Stream]:
        """Build action streams: clean targets at training, noise at inference."""

    def actions(self, streams: Mapping[str, Stream]) -> Tensor:
        """The action chunk ``[B, K, A]`` (normalised) once sampling is done."""
        return streams["action"].x


class Coupling(Declares, nn.Module, ABC):
    """How the world model and the action expert exchange information.

    ``requires`` states what it needs of the two (e.g. both provide ``tokens`` for a shared attention).
    """

    #: ``step`` without a prefilled context (``None``) computes what ``prefill`` + ``step`` compute, by the
    #: uncached reference pass (checked by the conformance suite); ``False`` for couplings whose inference
    #: has no uncached equivalent (a memory kept across calls, a routing decided once per call).
    uncached_reference: ClassVar[bool] = True

    @abstractmethod
    def forward(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
                cond: Conditioning) -> dict[str, Tensor]:
        """Velocities of every denoised stream (the uncached reference path)."""

    def prefill(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
                cond: Conditioning, active: set[str]) -> Any:
        """Precompute what stays fixed while only the ``active`` streams change (e.g. a KV cache)."""
        return None

    def step(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
             cond: Conditioning, active: set[str], context: Any) -> dict[str, Tensor]:
        """Velocities of the ``active`` streams given the prefilled ``context``."""
        return {k: v for k, v in self(world_model, action_expert, streams, cond).items() if k in active}

    def prepare(self, streams: dict[str, Stream], train: bool, generator: torch.Generator | None = None) -> None:
        """Rearrange streams before a pass (e.g. Fast-WAM IDM's conditioning copy); default nothing."""

    def finish(self, world_model: WorldModel, action_expert: ActionExpert, streams: Mapping[str, Stream],
               cond: Conditioning) -> None:
        """Called once ``WAMPolicy.predict`` has sampled every stream, with the final streams: a coupling
        that keeps memories across calls records what was generated (AHA-WAM's action history)."""

    def extra_losses(self, batch: Batch, streams: Mapping[str, Stream], outputs: Mapping[str, Tensor],
                     cond: Conditioning) -> dict[str, Tensor]:
        return {}

    def reset(self) -> None:
        """Forget state kept across calls."""

    def timings(self) -> dict[str, float]:
        """Timings this coupling keeps since the last :meth:`reset` (e.g. a background planner's), reported
        by ``wamzoo eval`` and ``wamzoo bench latency``; default none."""
        return {}

    def wait_idle(self) -> None:
        """Finish background work started by earlier calls (``wamzoo bench latency`` calls it between
        timed calls); default nothing to wait for."""


@dataclass
class Phase:
    """One stage of inference: these streams are denoised together, each in its number of steps."""

    steps: dict[str, int]
    #: End the phase after this many steps although some streams have more; those are left partly
    #: denoised (X-WAM's early stop: actions after T_a of the video's T_O steps).
    stop: int | None = None

    @property
    def length(self) -> int:
        n = max(self.steps.values())
        return n if self.stop is None else min(n, self.stop)


class Scheduler(Declares, ABC):
    """Training timestep distribution and inference plan (not an ``nn.Module``: it has no weights)."""

    @abstractmethod
    def sample_timesteps(self, streams: Mapping[str, Stream], generator: torch.Generator | None = None) -> None:
        """Set ``stream.t`` ``[B, U]`` for every denoised stream (0 on conditioning units)."""

    @abstractmethod
    def loss_weight(self, name: str, t: Tensor) -> Tensor:
        """Per-unit loss weight of stream ``name`` at times ``t``."""

    @abstractmethod
    def plan(self) -> list[Phase]:
        """Inference phases, in order."""

    @abstractmethod
    def sampler(self, name: str, steps: int):
        """A fresh :class:`wamzoo.samplers.FlowSampler` for stream ``name``."""

    def generated(self) -> set[str]:
        """Streams denoised at inference."""
        return {name for phase in self.plan() for name in phase.steps}
