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
        backbone: optional file of ActionDiT backbone weights interpolated from a video expert
            (``python -m wamzoo_fast_wam.action_init``); everything but ``action_encoder`` and
            ``head`` is loaded from it. Meant for starting a training run; set it to null to
            load a trained policy without the file.
        **kwargs: :class:`~wamzoo.experts.ActionDiTExpert`'s arguments; ``num_heads x head_dim`` must equal
            the video expert's (paper: dim 1024, ffn_dim 4096, 30 layers, 24 heads of 128).
    """

    def __init__(self, *, backbone: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if backbone:
            from wamzoo_fast_wam.action_init import load_backbone

            load_backbone(self.dit, backbone)
