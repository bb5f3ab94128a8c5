"""Fast-WAM's action expert "ActionDiT" (code: ``action_dit.py``).

A narrow DiT over the action chunk with the video expert's heads x head_dim (paper: 1024 wide,
30 layers, 24 x 128, FFN 4096), so both experts' Q/K/V concatenate in one attention. Linear
action encoder in, linear head out, 1-D RoPE over the chunk, one timestep per sample, its own
AdaLN, cross-attention to the context (instruction or task tokens plus the proprio token) and
FFN. The core's :class:`~wamzoo.experts.ActionDiTExpert` is exactly that; Fast-WAM adds the
initialisation from video-expert weights (:mod:`wamzoo_fast_wam.action_init`): ``backbone``
names a file written by ``python -m wamzoo_fast_wam.action_init``, loaded strictly, like the
code's ``action_dit_pretrained_path``.
"""

from __future__ import annotations

from wamzoo.experts import ActionDiTExpert


class FastWAMAction(ActionDiTExpert):
    """Fast-WAM ActionDiT over a chunk of ``horizon`` actions.

    Args:
        action_dim, horizon: action width and chunk length (filled from the data).
        dim, ffn_dim, num_layers, num_heads, head_dim: transformer size; ``num_heads x head_dim``
            must equal the video expert's (paper: 1024, 4096, 30, 24, 128).
        context_dim: width of the context tokens (filled from ``policy.context.dim``).
        backbone: optional file of ActionDiT backbone weights interpolated from a video expert
            (``python -m wamzoo_fast_wam.action_init``); everything but ``action_encoder`` and
            ``head`` is loaded from it. Meant for starting a training run; set it to null to
            load a trained policy without the file.
    """

    def __init__(self, action_dim: int, horizon: int, dim: int = 32, ffn_dim: int | None = None,
                 num_layers: int = 2, num_heads: int = 2, head_dim: int | None = None,
                 context_dim: int | None = None, backbone: str | None = None):
        super().__init__(action_dim, horizon, dim, ffn_dim, num_layers, num_heads, head_dim, context_dim)
        if backbone:
            from wamzoo_fast_wam.action_init import load_backbone

            load_backbone(self.dit, backbone)
