"""``WAMPolicy``: a world model, an action expert, a coupling and a scheduler composed into a policy.

>>> policy = WAMPolicy.from_config(recipe.policy, data_info)        # doctest: +SKIP
>>> loss, logs = policy.compute_loss(batch)                          # training
>>> chunk = policy.predict_action(observation)                       # [B, K, A], robot units
>>> policy.reset()                                                   # new episode

Training is flow matching on every denoised stream (``L = sum_s lambda_s L_s`` plus the
components' extra losses). Inference walks the scheduler's phases; in each, the coupling first
prefills what stays fixed (e.g. Fast-WAM's video KV cache), then the active streams are stepped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from wamzoo import hub
from wamzoo.batch import Batch, BatchError
from wamzoo.conditioning import ContextEncoder
from wamzoo.data.info import INJECTED, DataInfo
from wamzoo.interfaces import (ActionExpert, Codec, Conditioning, Coupling, Phase, Scheduler, Stream,
                               WorldModel)
from wamzoo.composition import ROLES, CompositionError, check
from wamzoo.nn.flow_matching import flow_loss, interpolate
from wamzoo.normalize import Normalizer
from wamzoo.plugins import get_plugins
from wamzoo.recipes import to_plain
from wamzoo.registry import Registry
from wamzoo.runtime import autocast, place
from wamzoo.sampling import Generators, noise_streams, sample


class WAMPolicy(nn.Module):
    """A World Action Model assembled from its four parts, a codec and a context encoder."""

    def __init__(self, world_model: WorldModel, action_expert: ActionExpert, coupling: Coupling,
                 scheduler: Scheduler, codec: Codec, context: ContextEncoder, normalizer: Normalizer | None = None,
                 loss_weights: Mapping[str, float] | None = None, info: DataInfo | None = None,
                 config: Mapping[str, Any] | None = None):
        super().__init__()
        self.world_model, self.action_expert, self.coupling = world_model, action_expert, coupling
        self.scheduler, self.codec, self.context = scheduler, codec, context
        self.normalizer = normalizer if normalizer is not None else Normalizer({})
        self.loss_weights = dict(loss_weights or {})
        self.info = info
        self.config = dict(config or {})
        #: Seconds the last :meth:`predict` spent in each part of the call (:class:`Laps`).
        self.last_timings: dict[str, float] = {}
        self.check_composition()

    def check_composition(self) -> None:
        """Refuse parts whose declared capabilities do not fit (:mod:`wamzoo.composition`), and a plan
        that denoises streams no component produces."""
        names = {role: self.config.get("policy", {}).get(role, {}).get("name") for role in ROLES}
        check({role: type(getattr(self, role)) for role in ROLES}, {k: v for k, v in names.items() if v})
        produced = set(self.world_model.streams_produced) | set(self.action_expert.streams_produced)
        planned = self.scheduler.generated()
        if not planned <= produced:
            raise CompositionError(f"scheduler {names['scheduler'] or type(self.scheduler).__name__!r} plans the"
                                   f" streams {sorted(planned - produced)}, which neither the world model nor the"
                                   f" action expert produces ({sorted(produced)}); fix scheduler.phases")

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_config(cls, policy: Mapping[str, Any], info: DataInfo | Mapping[str, Any],
                    registry: Registry | None = None) -> "WAMPolicy":
        """Build from a recipe's ``policy`` section and the data's :class:`~wamzoo.data.info.DataInfo`, with
        the components of ``registry`` (default: the loaded plugins')."""
        policy = to_plain(policy)
        info = info if isinstance(info, DataInfo) else DataInfo.from_dict(info)
        reg = registry if registry is not None else get_plugins().registry
        for part in ("world_model", "action_expert", "coupling", "scheduler"):
            if part not in policy or "name" not in policy[part]:
                raise ValueError(f"policy.{part}.name is missing; name a registered {part} (`wamzoo list`)")
        codec_cfg = dict(policy.get("codec", {"name": "patch"}))
        codec = reg.create("codec", codec_cfg.pop("name"), **codec_cfg)
        ctx_cfg = dict(policy.get("context", {}))
        ctx_cfg.setdefault("dim", 64)
        ctx_cfg.setdefault("num_tasks", len(info.tasks))
        ctx_cfg.setdefault("state_dim", info.state_dim)
        if ctx_cfg.get("keypoints"):
            ctx_cfg.setdefault("num_views", info.num_views)
        context = ContextEncoder(**ctx_cfg)
        facts = {
            "action_dim": info.action_dim, "state_dim": info.state_dim, "horizon": info.horizon,
            "num_views": info.num_views, "latent_channels": codec.latent_channels,
            "latent_height": info.height // codec.spatial_factor, "latent_width": info.width // codec.spatial_factor,
            "n_obs": codec.latent_frames(info.n_obs),
            "n_future": codec.latent_frames(info.n_obs + info.n_future) - codec.latent_frames(info.n_obs),
            "context_dim": ctx_cfg["dim"], "num_tasks": ctx_cfg["num_tasks"],
            "frame_stride": info.frame_stride, "future_frames": info.n_future,  # env steps; pixel frames
        }
        parts = {}
        for part in ("world_model", "action_expert", "coupling", "scheduler"):
            cfg = dict(policy[part])
            name = cfg.pop("name")
            entry = reg.get(part, name)
            params = entry.parameters()
            for key in INJECTED:
                if key in params and key not in cfg:
                    cfg[key] = facts[key]
            parts[part] = reg.create(part, name, **cfg)
        normalizer = Normalizer(info.stats or {}, policy.get("normalize"),  # without statistics: an untrained recipe
                                required=[] if info.stats is None else ["action"] + ["state"] * bool(info.state_dim))
        return cls(codec=codec, context=context, normalizer=normalizer, loss_weights=policy.get("loss_weights"),
                   info=info, config={"policy": policy, "data": info.to_dict()}, **parts)

    # -- shared steps -----------------------------------------------------------------------
    def condition(self, batch: Batch) -> Conditioning:
        state = None if batch.state is None else self.normalizer.normalize("state", batch.state.float())
        cond = self.context(batch, state)
        cond.codec = self.codec
        cond.normalizer = self.normalizer
        if "backbone" in self.action_expert.requires.get("world_model", ()):
            cond.backbone = self.world_model.backbone(cond)
        return cond

    def encode(self, batch: Batch) -> dict[str, Tensor]:
        return {k: self.codec.encode(v) for k, v in self.world_model.observations(batch).items()}

    def build_streams(self, batch: Batch, train: bool) -> tuple[dict[str, Stream], Conditioning]:
        batch.validate(need_action=train)
        if batch.action is not None:
            batch = batch.replace(action=self.normalizer.normalize("action", batch.action.float()))
        cond = self.condition(batch)
        latents = self.encode(batch)
        n_obs = self.codec.latent_frames(batch.n_obs)
        if train:
            n_future = next(iter(latents.values())).shape[1] - n_obs
        else:
            generated = self.scheduler.generated() & set(self.world_model.streams_produced)
            n_future = self.world_model.n_future if generated else 0
        streams = dict(self.world_model.make_streams(latents, n_obs, n_future, batch))
        streams.update(self.action_expert.make_streams(batch, cond, train))
        return streams, cond

    # -- training ---------------------------------------------------------------------------
    def compute_loss(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        """Flow-matching loss over all denoised streams plus the components' extra losses."""
        streams, cond = self.build_streams(batch, train=True)
        cond.loss_weights = dict(self.loss_weights)
        self.coupling.prepare(streams, train=True, generator=generator)
        self.scheduler.sample_timesteps(streams, generator)
        for name, s in streams.items():
            if s.denoised:
                s.x0 = s.x
                s.noise = torch.randn(s.x.shape, generator=generator, device=s.x.device if generator is None
                                      else "cpu").to(s.x)
                s.x = interpolate(s.x0, s.noise, s.t)
        outputs = self.coupling(self.world_model, self.action_expert, streams, cond)
        losses: dict[str, Tensor] = {}
        for name, pred in outputs.items():
            s = streams[name]
            if not s.denoised:  # readouts are scored by their component's extra_losses
                continue
            losses[name] = flow_loss(pred, s.x0, s.noise, s.loss_mask(), self.scheduler.loss_weight(name, s.t))
        for part in (self.world_model, self.action_expert, self.coupling):
            losses.update(part.extra_losses(batch, streams, outputs, cond))
        total = sum(self.loss_weights.get(k, 1.0) * v for k, v in losses.items())
        logs = {f"loss/{k}": float(v.detach()) for k, v in losses.items()}
        logs["loss"] = float(total.detach())
        return total, logs

    # -- inference --------------------------------------------------------------------------
    # -- placement ----------------------------------------------------------------------------
    def place(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> "WAMPolicy":
        """Move the whole policy to ``device`` (``auto``: CUDA, MPS or CPU) with weights at ``dtype``
        (``float32``, ``bfloat16``, ``float16``); see :mod:`wamzoo.runtime`. Returns the policy."""
        return place(self, device, dtype)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The precision of the policy's weights (its normaliser stays float32): its experts' first floating weight."""
        for part in (self.world_model, self.action_expert):
            for p in part.parameters():
                if p.is_floating_point():
                    return p.dtype
        return torch.float32

    @torch.no_grad()
    def predict(self, obs: Batch, generator: Generators = None, decode: bool = False,
                readouts: bool = False, plan: list[Phase] | None = None, cache: bool = True,
                seed: int | None = 0, instruction: str | list[str] | None = None) -> dict[str, Any]:
        """Sample every stream the scheduler plans; returns ``action`` (robot units) and the streams.

        With ``decode`` and a generated ``video`` stream, ``frames`` holds the predicted future
        frames ``[B, T', V, 3, H, W]`` decoded by the codec. With ``readouts``, streams flagged
        ``readout`` (e.g. X-WAM's depth) are predicted at the last step and left in ``streams``.
        ``plan`` replaces the scheduler's plan for this call (e.g. a full rather than early-stopped one);
        ``cache=False`` samples by the coupling's uncached reference pass (same actions, slower).
        ``generator``: one for the batch, or one per sample (a sample's actions then do not depend on the
        batch it is in: see :func:`wamzoo.sampling.randn`). Without one, every sample draws its noise from
        ``seed`` (default 0, so a call is reproducible; ``None``: torch's global generator). The
        observation moves to the policy's device; inference runs at its precision (:meth:`place`).
        ``instruction``: the task in words (one for the batch, or one per sample), encoded by the policy's
        text encoder (``policy.context.text_encoder``, :mod:`wamzoo.instructions`) into ``obs.instruction``.
        """
        if instruction is not None:
            texts = [instruction] * obs.batch_size if isinstance(instruction, str) else list(instruction)
            if len(texts) != obs.batch_size:
                raise BatchError(f"{len(texts)} instructions for a batch of {obs.batch_size}: give one, or one per"
                                 " sample")
            emb, mask = self.context.encode_text(texts)
            obs = obs.replace(instruction=emb, instruction_mask=mask)
        obs.check_fits(self.info, self.codec.resizes)
        if generator is None and seed is not None:
            generator = [torch.Generator().manual_seed(seed) for _ in range(obs.batch_size)]
        with autocast(self.device, self.dtype):
            return self._predict(obs.to(self.device), generator, decode, readouts, plan, cache)

    def _predict(self, obs: Batch, generator: Generators, decode: bool, readouts: bool, plan: list[Phase] | None,
                 cache: bool) -> dict[str, Any]:
        laps = Laps()
        if obs.action is not None or obs.n_future:
            obs = obs.observation()
        streams, cond = self.build_streams(obs, train=False)
        self.coupling.prepare(streams, train=False, generator=generator)
        plan = list(plan) if plan is not None else self.scheduler.plan()
        generated = {n for p in plan for n in p.steps}
        reads = {n for n, s in streams.items() if s.readout} if readouts else set()
        noise_streams(streams, generated, generator)
        laps.lap("encode")
        sample(self.coupling, self.world_model, self.action_expert, streams, cond, plan, self.scheduler.sampler,
               reads, laps.lap, cache)
        self.coupling.finish(self.world_model, self.action_expert, streams, cond)
        action = self.normalizer.unnormalize("action", self.action_expert.actions(streams).float())
        out: dict[str, Any] = {"action": action, "streams": streams}
        if decode and "video" in streams and "video" in generated:
            out["frames"] = self.codec.decode(streams["video"].x).float()
        laps.lap("finish")
        self.last_timings = laps.seconds
        return out

    def predict_action(self, obs: Batch, generator: Generators = None, seed: int | None = 0,
                       instruction: str | list[str] | None = None) -> Tensor:
        """An action chunk ``[B, K, A]`` in robot units for the observation (see :meth:`predict`)."""
        return self.predict(obs, generator, seed=seed, instruction=instruction)["action"]

    def reset(self) -> None:
        """Start a new episode: drop memories and caches kept across calls."""
        for part in (self.world_model, self.action_expert, self.coupling):
            part.reset()

    # -- persistence ------------------------------------------------------------------------
    def save_pretrained(self, folder, name: str | None = None, results: Mapping[str, Any] | None = None,
                        dtype: str | None = None, force: bool = False):
        """Write the native format (``config.json``, ``model.safetensors``, ``stats.json``, card); a folder that
        is not empty is refused unless ``force`` (see :func:`wamzoo.hub.save_pretrained`)."""
        return hub.save_pretrained(self, folder, name, dict(results) if results else None, dtype, force)

    def push_to_hub(self, repo_id: str, results: Mapping[str, Any] | None = None, **kwargs: Any):
        """Upload to the Hugging Face Hub (see :func:`wamzoo.hub.push_to_hub`)."""
        return hub.push_to_hub(self, repo_id, dict(results) if results else None, **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: str, revision: str | None = None, **kwargs: Any) -> "WAMPolicy":
        """Load from a folder, a pretrained name, ``hf-hub:org/repo[@revision]``, or a Hub repo id
        ``org/repo`` that is no registered name (``revision`` pins it)."""
        plain_repo = name_or_path.count("/") == 1 and not name_or_path.startswith("hf-hub:")
        if (plain_repo and not Path(name_or_path).exists()
                and ("pretrained", name_or_path) not in get_plugins().registry):
            name_or_path = f"hf-hub:{name_or_path}" + (f"@{revision}" if revision else "")
        return hub.load(name_or_path, cls.from_config, **kwargs)

    @property
    def tasks(self) -> list[str]:
        return list(self.info.tasks) if self.info else []

    def task_id(self, task: str) -> int:
        if task not in self.tasks:
            raise BatchError(f"task {task!r} is unknown to this policy; it was trained on {self.tasks}")
        return self.tasks.index(task)



class Laps:
    """Wall-clock seconds of the parts of one :meth:`WAMPolicy.predict` call: ``encode`` (streams and
    conditioning, the codec's encoding of the observation), ``prefill`` (the couplings' cached
    passes, e.g. Fast-WAM's video pass), ``denoise`` (the sampling steps) and ``finish``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, part: str) -> None:
        """Charge the time since the last lap to ``part``."""
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - self._t
        self._t = now
