"""Fast-WAM's video expert: a Wan2.2-TI2V-style video DiT (code: ``wan_video_dit.py``).

The core's :class:`~wamzoo.experts.VideoWorldModel` already is that network: patch embedding of
latents with the views side by side (the code concatenates cameras horizontally), per-token
timesteps with the clean current frame at ``t = 0`` (Wan2.2's ``seperated_timestep``), 3-D RoPE,
text/context cross-attention, AdaLN output head. Fast-WAM adds one thing: in its IDM variant the
expert also embeds the conditioning copy of the video (:mod:`wamzoo_fast_wam.idm`) with the same
blocks and the same RoPE grid.

At the paper's size this is ``FastWAMVideo(48, dim=3072, ffn_dim=14336, num_layers=30,
num_heads=24, head_dim=128, context_dim=4096)``, whose parameter names are those of diffusers'
``WanTransformer3DModel`` so Wan2.2-TI2V-5B weights load by name.
"""

from __future__ import annotations

from wamzoo.experts import VideoWorldModel

from wamzoo_fast_wam.masks import COND_VIDEO


class FastWAMVideo(VideoWorldModel):
    """Fast-WAM video expert (Wan2.2-style video DiT over the current and future latent frames).

    Args:
        latent_channels: codec channels (48 for the Wan2.2 VAE; filled from the codec).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size (paper: 3072, 14336, 30,
            24, 128).
        patch_size: (1, ph, pw) patch of the latent grid (paper: (1, 2, 2)).
        context_dim: width of the context tokens (paper: T5, 4096; filled from ``policy.context.dim``).
        n_future: future latent frames generated when the video is denoised (filled from the data).
        rope_frame_stride: RoPE distance between consecutive latent frames.
        num_views: camera views, placed side by side (filled from the data).
    """

    def __init__(self, latent_channels: int, dim: int = 64, ffn_dim: int | None = None, num_layers: int = 2,
                 num_heads: int = 2, head_dim: int | None = None, patch_size: tuple[int, int, int] = (1, 2, 2),
                 context_dim: int | None = None, n_future: int = 1, rope_frame_stride: float = 1.0,
                 num_views: int = 1):
        super().__init__(latent_channels, dim, ffn_dim, num_layers, num_heads, head_dim, patch_size, context_dim,
                         n_future, rope_frame_stride, num_views)

    def embed(self, streams, cond):
        sets = [self.token_set(streams["video"], "video", cond)]
        if COND_VIDEO in streams:
            sets.append(self.token_set(streams[COND_VIDEO], COND_VIDEO, cond))
        return sets

    def head(self, sets, hidden, streams):
        for s, h in zip(sets, hidden):
            if s.groups[0].stream == "video":
                return {"video": self.dit.unpatchify(h, s.temb, s.meta["grid"], s.meta["views"])}
        return {}
