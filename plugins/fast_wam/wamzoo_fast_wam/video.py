"""Fast-WAM's video expert: a Wan2.2-TI2V-style video DiT (code: ``wan_video_dit.py``).

The core's :class:`~wamzoo.experts.VideoWorldModel` already is that network: patch embedding of
latents with the views side by side (the code concatenates cameras horizontally), per-token
timesteps with the clean current frame at ``t = 0`` (Wan2.2's ``seperated_timestep``), 3-D RoPE,
text/context cross-attention, AdaLN output head. Fast-WAM adds one thing: in its IDM variant the
expert also embeds the conditioning copy of the video (:mod:`wamzoo_fast_wam.idm`) with the same
blocks and the same RoPE grid.

At the paper's size this is ``FastWAMVideo(latent_channels=48, dim=3072, ffn_dim=14336, num_layers=30,
num_heads=24, head_dim=128, context_dim=4096)``, whose parameter names are those of diffusers'
``WanTransformer3DModel`` so Wan2.2-TI2V-5B weights load by name.
"""

from __future__ import annotations

from wamzoo.experts import VideoWorldModel

from wamzoo_fast_wam.masks import COND_VIDEO


class FastWAMVideo(VideoWorldModel):
    """Fast-WAM video expert (Wan2.2-style video DiT over the current and future latent frames).

    Arguments: those of :class:`~wamzoo.experts.VideoWorldModel` (paper: ``latent_channels`` 48 from
    the Wan2.2 VAE, ``dim`` 3072, ``ffn_dim`` 14336, ``num_layers`` 30, ``num_heads`` 24,
    ``head_dim`` 128, ``patch_size`` (1, 2, 2), ``context_dim`` 4096 from T5).
    """

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
