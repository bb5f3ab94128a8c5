"""X-WAM's world model: a Wan2.2-style video DiT over multi-view latents, plus the depth branch.

X-WAM §3.1-3.3 and the public ``XWAMModel``: every view is patchified on its own and gets a learned
view embedding (views are separate tokens sharing the (frame, row, col) RoPE grid, not side by side);
per-token timesteps with the observed latent frame clean (t = 0). The DiT's blocks and time
embedding are lent (:meth:`backbone`) to the action expert, whose state and action tokens run
through the same blocks in one full-attention sequence. Parameter names follow diffusers'
``WanTransformer3DModel`` under ``dit.`` (``patch_embedding``, ``condition_embedder``, ``blocks``,
``norm_out``, ``proj_out``, ``scale_shift_table``), so Wan2.2-TI2V-5B weights load by name.

Streams: ``video`` (denoised, group ``obs``) and, with ``depth_layers > 0``, ``depth`` (a readout:
inverse-depth latents predicted by :mod:`wamzoo_x_wam.depth_branch`). Token groups per view ``v``:
``video.cond.v{v}`` (observed frames), ``video.future.v{v}``, ``depth.v{v}``; token ``index`` is
the latent frame.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from wamzoo.batch import Batch
from wamzoo.composition import caps
from wamzoo.interfaces import Conditioning, Stream, WorldModel
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import Backbone, TokenSet
from wamzoo.nn.video_dit import VideoDiT

from wamzoo_x_wam.depth_branch import DepthBranch, depth_to_pixels


class XWAMWorldModel(WorldModel):
    """Multi-view video DiT with learned view embeddings and an optional depth branch.

    Args:
        latent_channels: codec channels (filled from the codec).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size (paper: 3072, 14336, 30, 24, 128).
        patch_size: (1, ph, pw) DiT patch of the latent grid.
        context_dim: width of the context tokens (filled; paper: T5, 4096).
        n_future: future latent frames (filled from the data window).
        num_views: camera views (filled from the data).
        depth_layers: ``M``, the last blocks copied into the depth branch (paper: 10; 0: no depth).
        depth_near: metres mapped to inverse depth 1 (``near / depth``); nearer pixels saturate.
        freq_dim: width of the sinusoidal timestep features (Wan: 256; the converter reads it from the weights).
    """

    streams_produced = ("video", "depth")
    provides = caps("tokens", "backbone", "video", "depth")

    def __init__(self, latent_channels: int, dim: int = 64, ffn_dim: int | None = None, num_layers: int = 3,
                 num_heads: int = 2, head_dim: int | None = None, patch_size: tuple[int, int, int] = (1, 2, 2),
                 context_dim: int | None = None, n_future: int = 1, num_views: int = 1, depth_layers: int = 1,
                 depth_near: float = 0.5, freq_dim: int = 256):
        super().__init__()
        if not 0 <= depth_layers <= num_layers:
            raise ValueError(f"depth_layers must be within 0..num_layers={num_layers}, got {depth_layers}")
        self.dit = VideoDiT(latent_channels, dim, ffn_dim or 4 * dim, num_layers, num_heads, head_dim,
                            tuple(patch_size), context_dim, freq_dim=freq_dim)
        self.view_embedding = nn.Embedding(num_views, dim)
        nn.init.normal_(self.view_embedding.weight, std=0.02)
        self.n_future, self.num_views, self.depth_near = n_future, num_views, float(depth_near)
        self.depth_layers = depth_layers
        out = self.dit.out_channels * self.dit.patch_size[1] * self.dit.patch_size[2]
        self.depth = DepthBranch(self.dit.blocks[num_layers - depth_layers:], dim, out) if depth_layers else None
        if self.depth is None:
            self.streams_produced = ("video",)

    # -- streams ----------------------------------------------------------------------------
    def observations(self, batch: Batch) -> dict[str, Tensor]:
        """RGB, plus inverse-depth pixels of training windows (inference never encodes depth)."""
        obs = {"rgb": batch.rgb_float()}
        if self.depth is not None and batch.depth is not None and batch.action is not None:
            obs["depth"] = depth_to_pixels(batch.depth, self.depth_near)
        return obs

    def make_streams(self, latents: Mapping[str, Tensor], n_obs: int, n_future: int,
                     batch: Batch) -> dict[str, Stream]:
        z = latents["rgb"][:, : n_obs + n_future]
        B, F = z.shape[0], n_obs + n_future
        if z.shape[1] < F:  # inference: future units start empty, the policy noises them
            z = torch.cat([z, z.new_zeros(B, F - z.shape[1], *z.shape[2:])], 1)
        if z.shape[2] != self.num_views:
            raise ValueError(f"the batch has {z.shape[2]} views but the model was built for {self.num_views}")
        cond = (torch.arange(F, device=z.device) < n_obs)[None].expand(B, -1)
        streams = {"video": Stream(x=z, cond=cond, group="obs")}
        if self.depth is not None and ("depth" in latents or batch.action is None):
            d = latents["depth"][:, :F] if "depth" in latents else torch.zeros_like(z)
            pad = None if batch.frame_pad is None or "depth" not in latents else self._latent_pad(batch, F)
            streams["depth"] = Stream(x=d, cond=torch.zeros_like(cond), group="obs", pad=pad, denoised=False,
                                      readout=True)
        return streams

    @staticmethod
    def _latent_pad(batch: Batch, frames: int) -> Tensor | None:
        pad = batch.frame_pad
        return pad[:, :frames] if pad.shape[1] == frames else None  # temporal codecs: no per-latent pad

    # -- tokens -----------------------------------------------------------------------------
    def _video_set(self, s: Stream, cond: Conditioning) -> TokenSet:
        B, F, V = s.x.shape[:3]
        grid = self.dit.grid(s.x[:, :, :1])
        per_frame = grid[1] * grid[2]
        n_obs = int(s.cond[0].sum())
        frame = torch.arange(F).repeat_interleave(per_frame)
        xs, groups = [], []
        for v in range(V):  # views are separate tokens (X-WAM), each with its view embedding
            xs.append(self.dit.tokens(s.x[:, :, v: v + 1]) + self.view_embedding.weight[v])
            groups.append(TokenGroup(f"video.cond.v{v}", n_obs * per_frame, "video", True, frame[: n_obs * per_frame]))
            if F > n_obs:
                groups.append(TokenGroup(f"video.future.v{v}", (F - n_obs) * per_frame, "video", False,
                                         frame[n_obs * per_frame:]))
        temb, mod = self.dit.condition_embedder(s.t)  # per frame, then per token (all tokens of a frame share t)
        temb = temb.repeat_interleave(per_frame, 1).repeat(1, V, 1)
        mod = mod.repeat_interleave(per_frame, 1).repeat(1, V, 1, 1)
        rope = self.dit.rope(grid, device=s.x.device).repeat(V, 1)
        context, context_mask = self._context(cond)
        return TokenSet(torch.cat(xs, 1), mod, rope, self.dit.blocks, groups, temb, context, context_mask,
                        meta={"kind": "video", "stream": "video", "grid": grid, "views": V})

    def _context(self, cond: Conditioning) -> tuple[Tensor | None, Tensor | None]:
        if cond.context is None or self.dit.condition_embedder.text_embedder is None:
            return None, None
        embedder = self.dit.condition_embedder
        return cond.once(embedder, lambda: embedder.text(cond.context)), cond.context_mask

    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[TokenSet]:
        video = self._video_set(streams["video"], cond)
        sets = [video]
        if self.depth is not None and "depth" in streams:
            first = len(self.dit.blocks) - self.depth.num_layers
            sets.append(self.depth.token_set(video, first, video.meta["views"]))
        return sets

    def _fold(self, out: Tensor, grid: tuple[int, int, int], views: int) -> Tensor:
        """Per-token outputs ``[B, V * F * rows * cols, C * ph * pw]`` -> latents ``[B, F, V, C, h, w]``."""
        B = out.shape[0]
        F, rows, cols = grid
        _, ph, pw = self.dit.patch_size
        C = self.dit.out_channels
        out = out.reshape(B, views, F, rows, cols, ph, pw, C)
        return out.permute(0, 2, 1, 7, 3, 5, 4, 6).reshape(B, F, views, C, rows * ph, cols * pw)

    def head(self, sets, hidden, streams):
        out = {}
        for s, h in zip(sets, hidden):
            if s.meta["kind"] == "video":
                d = self.dit
                shift, scale = (d.scale_shift_table[None] + s.temb[:, :, None].float()).chunk(2, dim=2)
                y = d.proj_out((d.norm_out(h.float()) * (1 + scale.squeeze(2)) + shift.squeeze(2)).type_as(h))
                out["video"] = self._fold(y, s.meta["grid"], s.meta["views"])
            else:
                out["depth"] = self._fold(self.depth.head(h, s.temb), s.meta["grid"], s.meta["views"])
        return out

    def backbone(self, cond: Conditioning) -> Backbone:
        """The DiT's blocks and time embedding: the action expert's tokens run through them."""
        context, context_mask = self._context(cond)
        return Backbone(self.dit.blocks, self.dit.condition_embedder, self.dit.dim, self.dit.head_dim,
                        self.dit.rope_theta, context, context_mask)

    # -- losses -----------------------------------------------------------------------------
    def extra_losses(self, batch, streams, outputs, cond):
        if "depth" not in outputs:
            return {}
        s = streams["depth"]
        return {"depth": self.depth.loss(outputs["depth"], s.x, s.pad)}
