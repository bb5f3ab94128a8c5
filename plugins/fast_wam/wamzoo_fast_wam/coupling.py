"""Fast-WAM's coupling: the core's Mixture-of-Transformers attention under Fast-WAM's masks.

Each expert keeps its own QKV (RMSNorm on q and k, RoPE), AdaLN modulation and timestep,
cross-attention, FFN and output projection; one masked attention runs over the concatenated
tokens at every layer (paper: Mixture-of-Transformers; code: ``mot.py``). The variants differ only in the mask
(:mod:`wamzoo_fast_wam.masks`) and, for IDM, in the conditioning copy of the video
(:mod:`wamzoo_fast_wam.idm`), which is added in :meth:`prepare` and, at inference, replaced by
the generated video once the video is no longer denoised (:meth:`prefill` and :meth:`step`).

Skipping imagination at test time needs no code here: with the ``default`` mask the clean first frame
attends only to itself, so :meth:`MoTCoupling.prefill` caches its per-layer keys/values in one
video pass and every Euler step runs the action tokens alone against that cache.

>>> import wamzoo
>>> coupling = wamzoo.create("coupling", "fast-wam.mot", variant="idm")   # doctest: +SKIP
"""

from __future__ import annotations

from wamzoo.couplings import MoTCoupling

from wamzoo_fast_wam.idm import conditioning_copy, refresh_condition
from wamzoo_fast_wam.masks import COND_VIDEO, MASKS


class FastWAMCoupling(MoTCoupling):
    """Fast-WAM's shared masked attention between the video expert and the ActionDiT.

    Args:
        variant: ``"default"`` (first-frame causal; actions read only the current frame, video
            skipped at test time), ``"joint"`` (actions read all video; video and actions denoised
            together) or ``"idm"`` (actions read a conditioning copy of the video; video generated
            first).
        cond_noise_prob: IDM only: probability that a training sample's conditioning video is
            re-noised (the code's ``video_cond_noise_prob = 0.5``).
        cond_noise_shift: IDM only: shift ``s`` of ``t_c = phi(u)`` for that re-noising (the code
            uses its video training scheduler, ``s = 5``).
        grad_checkpoint: recompute each layer in the backward pass.
    """

    def __init__(self, variant: str = "default", cond_noise_prob: float = 0.5, cond_noise_shift: float = 5.0,
                 grad_checkpoint: bool = False):
        if variant not in MASKS:
            raise ValueError(f"unknown Fast-WAM variant {variant!r}; choose one of {', '.join(MASKS)}")
        if not 0.0 <= cond_noise_prob <= 1.0:
            raise ValueError(f"cond_noise_prob must be in [0, 1], got {cond_noise_prob}")
        super().__init__(MASKS[variant], grad_checkpoint)
        self.variant = variant
        self.cond_noise_prob, self.cond_noise_shift = float(cond_noise_prob), float(cond_noise_shift)

    def token_sets(self, world_model, action_expert, streams, cond):
        sets, n_world, groups, mask, num_layers = super().token_sets(world_model, action_expert, streams, cond)
        widths = {(blk.attn1.heads, blk.attn1.head_dim) for s in sets for blk in s.blocks[:1]}
        if len(widths) > 1:
            raise ValueError(f"Fast-WAM experts must share heads x head_dim for one attention, got {sorted(widths)}")
        return sets, n_world, groups, mask, num_layers

    def prepare(self, streams, train, generator=None):
        if self.variant == "idm":
            streams[COND_VIDEO] = conditioning_copy(streams["video"], train, self.cond_noise_prob,
                                                    self.cond_noise_shift, generator)

    def _sync(self, streams, active) -> None:
        # IDM at inference: once the video is not being denoised, actions read the generated video.
        if self.variant == "idm" and "video" not in active:
            refresh_condition(streams)

    def prefill(self, world_model, action_expert, streams, cond, active):
        self._sync(streams, active)
        return super().prefill(world_model, action_expert, streams, cond, active)

    def step(self, world_model, action_expert, streams, cond, active, context):
        self._sync(streams, active)
        return super().step(world_model, action_expert, streams, cond, active, context)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}"

