"""X-WAM's action expert: state and action tokens that ride on the world model's DiT.

X-WAM §3.1-3.2 and ``XWAMModel.action_encoder/decoder``, ``proprio_encoder/decoder``: actions and
proprioceptive states enter the *same* sequence as the video latents through learnable MLPs
(``Linear -> GELU(tanh) -> Linear``), are processed by the video DiT's blocks with their own
per-token timesteps, and leave through MLPs applied to the final hidden states (no output norm,
as in the code). This expert has no transformer of its own: it requires a world model that provides
``backbone`` and reads that :class:`~wamzoo.nn.mot.Backbone` from ``cond.backbone``.

RoPE: actions run ``frame_stride`` times faster than frames and a latent frame spans
``future_frames / n_future`` frames, so action ``k`` sits at the fractional latent-frame
position ``k / (frame_stride * frames_per_latent)`` and state ``j`` (one per frame) at
``j / frames_per_latent``; their row/column positions are 0 (the code's ``action_freqs`` /
``proprio_freqs``: with 4 actions per frame and the VAE's 4x, action ``k`` at ``k / 16``).

Streams (group ``action``, so state shares the action timestep): ``action`` ``[B, K, A]`` (all
units denoised) and ``state`` ``[B, 1 + F, S]`` (``s_0`` clean, then one state per future frame,
read from ``batch.future_state`` ``[B, F, S]`` in robot units). ``state_tokens="current"``
keeps only the clean ``s_0`` token (data without future states).
"""

from __future__ import annotations

import warnings
from typing import Mapping

import torch
from torch import Tensor, nn

from wamzoo.batch import Batch, BatchError
from wamzoo.composition import caps
from wamzoo.interfaces import ActionExpert, Conditioning, Stream
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import Backbone, TokenSet
from wamzoo.nn.rope import rope_angles_3d

STATE_TOKENS = ("frames", "current")
_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        warnings.warn(msg, stacklevel=3)


def _mlp(i: int, hidden: int, o: int) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(i, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, o))
    for m in mlp:
        if isinstance(m, nn.Linear):  # X-WAM init_new_weights
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
    return mlp


class XWAMActionExpert(ActionExpert):
    """Action and state MLP tokens in the world model's sequence.

    Args:
        action_dim, state_dim, horizon: filled from the data.
        dim: the world model's width (the MLPs map to it).
        n_obs, n_future: observed / future latent frames (filled); future_frames, frame_stride:
            future frames and env steps between frames (filled), for the fractional RoPE positions.
        state_tokens: ``"frames"`` (X-WAM: ``s_0`` plus one state per future frame) or ``"current"``.
    """

    streams_produced = ("action", "state")
    provides = caps("tokens")
    requires = {"world_model": caps("backbone")}

    def __init__(self, action_dim: int, state_dim: int, horizon: int, dim: int = 64, n_obs: int = 1,
                 n_future: int = 1, future_frames: int = 1, frame_stride: int = 1, state_tokens: str = "frames"):
        super().__init__()
        if state_tokens not in STATE_TOKENS:
            raise ValueError(f"state_tokens must be one of {STATE_TOKENS}, got {state_tokens!r}")
        if state_dim < 1:
            raise ValueError("X-WAM denoises proprioception: the data must provide a state (state_dim >= 1)")
        self.action_dim, self.state_dim, self.horizon, self.dim = action_dim, state_dim, horizon, dim
        self.n_obs, self.n_future, self.future_frames = n_obs, n_future, future_frames
        self.frame_stride, self.state_tokens = frame_stride, state_tokens
        self.action_encoder = _mlp(action_dim, dim, dim)
        self.action_decoder = _mlp(dim, dim, action_dim)
        self.state_encoder = _mlp(state_dim, dim, dim)
        # "current" keeps only the clean s_0 token: no state is predicted, so there is no decoder to train
        self.state_decoder = _mlp(dim, dim, state_dim) if state_tokens == "frames" else None

    @property
    def frames_per_latent(self) -> float:
        return self.future_frames / self.n_future if self.n_future and self.future_frames else 1.0

    @property
    def state_units(self) -> int:
        return 1 + (self.future_frames if self.state_tokens == "frames" else 0)

    def positions(self) -> tuple[Tensor, Tensor]:
        """Latent-frame RoPE positions of the actions ``[K]`` and states ``[1 + F]``."""
        now = float(self.n_obs - 1)  # the current frame is the last observed latent frame
        fpl = self.frames_per_latent
        actions = now + torch.arange(self.horizon, dtype=torch.float64) / (self.frame_stride * fpl)
        states = now + torch.arange(self.state_units, dtype=torch.float64) / fpl
        return actions, states

    # -- streams ----------------------------------------------------------------------------
    def make_streams(self, batch: Batch, cond: Conditioning, train: bool) -> dict[str, Stream]:
        B = batch.batch_size
        device = batch.rgb.device
        if cond.state is None:
            raise BatchError("X-WAM needs the current state `state` [B, S] (the clean s_0 token)")
        if train:
            if batch.action.shape[1:] != (self.horizon, self.action_dim):
                raise ValueError(f"action chunk {tuple(batch.action.shape[1:])} does not match the expert's"
                                 f" (horizon={self.horizon}, action_dim={self.action_dim})")
            action, action_pad = batch.action.float(), batch.action_pad
        else:
            action, action_pad = torch.zeros(B, self.horizon, self.action_dim, device=device), None
        state = cond.state.float()[:, None]
        state_pad = None
        if self.state_units > 1:
            if train:
                future = batch.future_state
                if future is None:  # e.g. `wamzoo bench train` on dummy batches: no state targets, no state loss
                    _warn_once(f"X-WAM with state_tokens='frames' denoises future states but the batch has no"
                               f" future_state [B, {self.future_frames}, S]: the state loss is skipped"
                               " (use the x-wam.metaworld data module, or action_expert.state_tokens=current)")
                    future = state.expand(-1, self.future_frames, -1)
                    state_pad = torch.ones(B, self.state_units, dtype=torch.bool, device=device)
                else:
                    if cond.normalizer is None:
                        raise ValueError("future states need the policy's normaliser (Conditioning.normalizer)")
                    future = cond.normalizer.normalize("state", future.float())
                    fp = batch.frame_pad
                    if fp is not None and fp.shape[1] == batch.n_obs + self.future_frames:
                        state_pad = torch.cat([torch.zeros_like(fp[:, :1]), fp[:, batch.n_obs:]], 1)
            else:
                future = state.new_zeros(B, self.future_frames, self.state_dim)
            state = torch.cat([state, future], 1)
        state_cond = torch.zeros(B, self.state_units, dtype=torch.bool, device=device)
        state_cond[:, 0] = True
        return {"action": Stream(x=action, cond=torch.zeros(B, self.horizon, dtype=torch.bool, device=device),
                                 group="action", pad=action_pad),
                "state": Stream(x=state, cond=state_cond, group="action", pad=state_pad)}

    # -- tokens -----------------------------------------------------------------------------
    def _rope(self, positions: Tensor, backbone: Backbone, device) -> Tensor:
        zeros = torch.zeros_like(positions)
        return rope_angles_3d(torch.stack([positions, zeros, zeros], -1), backbone.head_dim,
                              backbone.rope_theta).to(device)

    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[TokenSet]:
        backbone = cond.backbone
        if backbone is None:
            raise ValueError("XWAMActionExpert rides on the world model's DiT (cond.backbone); compose it with a"
                             " world model that provides 'backbone'")
        if backbone.dim != self.dim:
            raise ValueError(f"action_expert.dim={self.dim} must equal the world model's width {backbone.dim}")
        a, s = streams["action"], streams["state"]
        pa, ps = self.positions()
        sets = []
        for name, stream, enc, pos in (("action", a, self.action_encoder, pa), ("state", s, self.state_encoder, ps)):
            temb, mod = backbone.embed_time(stream.t)
            frame = pos.floor().float()
            if name == "action":
                groups = [TokenGroup("action", stream.units, "action", False, frame)]
            else:
                groups = [TokenGroup("state.cond", 1, "state", True, frame[:1])]
                if stream.units > 1:
                    groups.append(TokenGroup("state.future", stream.units - 1, "state", False, frame[1:]))
            sets.append(TokenSet(enc(stream.x.to(enc[0].weight.dtype)), mod, self._rope(pos, backbone, stream.x.device),
                                 backbone.blocks, groups, temb, backbone.context, backbone.context_mask,
                                 meta={"kind": name}))
        return sets

    def head(self, sets, hidden, streams):
        out = {}
        for s, h in zip(sets, hidden):
            dec = self.action_decoder if s.meta["kind"] == "action" else self.state_decoder
            if dec is not None:
                out[s.meta["kind"]] = dec(h)
        return out
