"""Paper-neutral Wan-style components every plugin can build on.

- ``dit.video`` (:class:`VideoWorldModel`): a video DiT over multi-view latents. The first
  ``n_obs`` latent frames are clean conditioning (group ``video.cond``); ``n_future`` frames are
  denoised (group ``video.future``). Token ``index`` is the latent frame, for ordered mask rules.
- ``dit.action`` (:class:`ActionDiTExpert`): an ActionDiT over the action chunk (group ``action``).

Both expose ``embed``/``head`` so they join any :class:`~wamzoo.couplings.MoTCoupling`.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from wamzoo.batch import Batch
from wamzoo.composition import caps
from wamzoo.interfaces import ActionExpert, Conditioning, Stream, WorldModel
from wamzoo.nn.action_dit import ActionDiT
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import Backbone, TokenSet
from wamzoo.nn.rope import rope_rotation
from wamzoo.nn.video_dit import VideoDiT


def _context(embedder, cond: Conditioning) -> tuple[Tensor | None, Tensor | None]:
    if cond.context is None or embedder.text_embedder is None:
        return None, None
    return cond.once(embedder, lambda: embedder.text(cond.context)), cond.context_mask


class VideoWorldModel(WorldModel):
    """Wan-style video DiT world model (views side by side, per-token timesteps).

    Args:
        latent_channels: codec channels (filled from the codec).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size.
        patch_size: (1, ph, pw) patch of the latent grid.
        context_dim: width of the context tokens (filled from ``policy.context.dim``).
        n_future: future latent frames predicted (filled from the data window).
        rope_frame_stride: RoPE distance between consecutive latent frames.
        num_views: camera views (filled from the data).
        freq_dim: width of the sinusoidal timestep features (Wan: 256; a converter reads it from the weights).
    """

    streams_produced = ("video",)
    provides = caps("tokens", "backbone", "video", "frame-tokens")

    def __init__(self, latent_channels: int, dim: int = 64, ffn_dim: int | None = None, num_layers: int = 2,
                 num_heads: int = 2, head_dim: int | None = None, patch_size: tuple[int, int, int] = (1, 2, 2),
                 context_dim: int | None = None, n_future: int = 1, rope_frame_stride: float = 1.0,
                 num_views: int = 1, freq_dim: int = 256):
        super().__init__()
        self.dit = VideoDiT(latent_channels, dim, ffn_dim or 4 * dim, num_layers, num_heads, head_dim,
                            tuple(patch_size), context_dim, freq_dim=freq_dim)
        self.n_future, self.rope_frame_stride, self.num_views = n_future, rope_frame_stride, num_views

    def make_streams(self, latents: Mapping[str, Tensor], n_obs: int, n_future: int,
                     batch: Batch) -> dict[str, Stream]:
        z = latents["rgb"][:, : n_obs + n_future]
        B = z.shape[0]
        if z.shape[1] < n_obs + n_future:  # inference: future units start empty, the policy noises them
            z = torch.cat([z, z.new_zeros(B, n_obs + n_future - z.shape[1], *z.shape[2:])], 1)
        cond = (torch.arange(z.shape[1], device=z.device) < n_obs)[None].expand(B, -1)
        return {"video": Stream(x=z, cond=cond, group="obs")}

    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[TokenSet]:
        return [self.token_set(streams["video"], "video", cond)]

    def token_set(self, s: Stream, name: str, cond: Conditioning) -> TokenSet:
        """Tokens of a latent stream: groups ``{name}.cond`` (observed frames) and ``{name}.future``."""
        grid = self.dit.grid(s.x)
        per_frame = grid[1] * grid[2]
        x = self.dit.tokens(s.x)
        temb, mod = self.dit.condition_embedder(s.t)  # once per frame: every token of a frame shares its time
        temb, mod = temb.repeat_interleave(per_frame, 1), mod.repeat_interleave(per_frame, 1)
        n_obs = int(s.cond[0].sum())
        frame = torch.arange(grid[0]).repeat_interleave(per_frame)
        groups = [TokenGroup(f"{name}.cond", n_obs * per_frame, name, True, frame[: n_obs * per_frame])]
        if grid[0] > n_obs:
            groups.append(TokenGroup(f"{name}.future", (grid[0] - n_obs) * per_frame, name, False,
                                     frame[n_obs * per_frame:]))
        context, context_mask = _context(self.dit.condition_embedder, cond)
        rope = self.dit.rope(grid, frame_stride=self.rope_frame_stride, device=x.device)
        return TokenSet(x, mod, rope, self.dit.blocks, groups, temb, context, context_mask,
                        meta={"grid": grid, "views": s.x.shape[2]})

    def head(self, sets, hidden, streams):
        (s,), (h,) = sets, hidden
        return {"video": self.dit.unpatchify(h, s.temb, s.meta["grid"], s.meta["views"])}

    def backbone(self, cond: Conditioning) -> Backbone:
        """This DiT's blocks and time embedding, for action experts that ride on it."""
        context, context_mask = _context(self.dit.condition_embedder, cond)
        return Backbone(self.dit.blocks, self.dit.condition_embedder, self.dit.dim, self.dit.head_dim,
                        self.dit.rope_theta, context, context_mask)


class ActionDiTExpert(ActionExpert):
    """ActionDiT action expert over a chunk of ``horizon`` actions.

    Args:
        action_dim, horizon: action width and chunk length (filled from the data).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size; ``num_heads x head_dim``
            must equal the world model's for a shared attention.
        context_dim: width of the context tokens (filled from ``policy.context.dim``).
        freq_dim: width of the sinusoidal timestep features (Wan: 256).
    """

    streams_produced = ("action",)
    provides = caps("tokens")

    def __init__(self, action_dim: int, horizon: int, dim: int = 32, ffn_dim: int | None = None,
                 num_layers: int = 2, num_heads: int = 2, head_dim: int | None = None,
                 context_dim: int | None = None, freq_dim: int = 256):
        super().__init__()
        self.action_dim, self.horizon = action_dim, horizon
        self.dit = ActionDiT(action_dim, dim, ffn_dim or 4 * dim, num_layers, num_heads, head_dim, context_dim,
                             freq_dim)

    def make_streams(self, batch: Batch, cond: Conditioning, train: bool) -> dict[str, Stream]:
        B = batch.batch_size
        if train:
            if batch.action.shape[1:] != (self.horizon, self.action_dim):
                raise ValueError(f"action chunk {tuple(batch.action.shape[1:])} does not match the expert's"
                                 f" (horizon={self.horizon}, action_dim={self.action_dim})")
            x, pad = batch.action.float(), batch.action_pad
        else:
            x, pad = batch.rgb.new_zeros(B, self.horizon, self.action_dim, dtype=torch.float32), None
        cond_mask = torch.zeros(B, self.horizon, dtype=torch.bool, device=x.device)
        return {"action": Stream(x=x, cond=cond_mask, group="action", pad=pad)}

    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[TokenSet]:
        s = streams["action"]
        K = s.units
        temb, mod = self.dit.condition_embedder(s.t)
        positions = torch.arange(K, device=s.x.device)
        context, context_mask = _context(self.dit.condition_embedder, cond)
        groups = [TokenGroup("action", K, "action", False, positions.cpu())]
        rope = cond.once((self, "rope", K), lambda: rope_rotation(self.dit.rope(positions)))  # every step's
        return [TokenSet(self.dit.tokens(s.x), mod, rope, self.dit.blocks, groups, temb, context, context_mask)]

    def head(self, sets, hidden, streams):
        return {"action": self.dit.head(hidden[0])}
