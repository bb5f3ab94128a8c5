"""X-WAM's depth branch (X-WAM §3.3; public code ``XWAMModel.extra_blocks`` / ``extra_heads``).

The last ``M`` blocks of the video DiT are copied into a branch. At layer ``L - M`` the branch forks
from the main branch's hidden states of the video tokens; in each of its blocks the depth queries
attend to their own keys plus the main block's same-layer keys/values (video, action *and* state
tokens), and the main branch never reads depth. The branch has its own output head and predicts
the codec latents of the depth video directly (a regression, not a denoised stream: the code's
loss is ``MSE(depth_pred, depth_latents)`` over every frame, the observed one included), so it is
a *readout* stream. It runs only when depth is asked for: action-only calls never touch it.

Depth enters the codec like RGB (X-WAM encodes depth videos with the same VAE): inverse depth
``near / d`` clipped to [0, 1] (the paper predicts inverse depth), repeated to 3 channels.
``near`` (metres) sets the scale; Meta-World's far plane (about 113 m) maps to about 0.

In the wamzoo engine the branch is a :class:`~wamzoo.nn.mot.TokenSet` with ``first_layer = L - M``,
``source`` = the main video groups (it starts from their hidden states) and ``branch = True`` (it
attends in its own call, so the main branch is bit for bit the same with or without it).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from wamzoo.nn.dit import OutputHead
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import TokenSet


def depth_to_pixels(depth: Tensor, near: float) -> Tensor:
    """Metric depth ``[..., 1, H, W]`` (metres) -> inverse-depth pixels ``[..., 3, H, W]`` in [0, 1]."""
    inv = (near / depth.float().clamp(min=1e-6)).clamp(0.0, 1.0)
    inv = torch.where(torch.isfinite(depth) & (depth > 0), inv, torch.zeros_like(inv))
    return inv.expand(*inv.shape[:-3], 3, *inv.shape[-2:])


def pixels_to_depth(pixels: Tensor, near: float, min_inverse: float = 1e-3) -> Tensor:
    """Inverse-depth pixels ``[..., 3, H, W]`` (channel mean) -> metric depth ``[..., 1, H, W]``."""
    inv = pixels.float().mean(-3, keepdim=True).clamp(min=min_inverse)
    return near / inv


class DepthBranch(nn.Module):
    """``M`` blocks copied from the main branch plus an output head.

    Args:
        blocks: the main branch's last ``M`` blocks; deep-copied, so the branch starts from their
            weights (X-WAM ``copy_weights_to_extra_blocks``).
        dim, out_dim: hidden width and output channels per token (``C * ph * pw``).
    """

    def __init__(self, blocks: nn.ModuleList | list[nn.Module], dim: int, out_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList([copy.deepcopy(b) for b in blocks])
        self.head = OutputHead(dim, out_dim)
        nn.init.normal_(self.head.proj_out.weight, std=0.02)  # X-WAM init_new_weights for extra heads
        nn.init.zeros_(self.head.proj_out.bias)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @torch.no_grad()
    def copy_from(self, blocks: nn.ModuleList | list[nn.Module]) -> None:
        """Re-initialise from the main branch's last blocks (after loading pretrained main weights)."""
        for mine, theirs in zip(self.blocks, list(blocks)[-len(self.blocks):]):
            mine.load_state_dict(theirs.state_dict())

    def token_set(self, main: TokenSet, first_layer: int, views: int) -> TokenSet:
        """The branch's tokens: one per main video token, forked from them at ``first_layer``.

        ``main`` holds the video tokens in per-view groups; the depth tokens reuse their
        modulation (the video timesteps, as in the code), RoPE angles and context.
        """
        video = [g for g in main.groups if g.stream == main.meta["stream"]]
        groups = []
        for v in range(views):
            mine = [g for g in video if g.name.endswith(f".v{v}")]
            index = torch.cat([g.indices() for g in mine])
            groups.append(TokenGroup(f"depth.v{v}", sum(g.size for g in mine), "depth", False, index))
        B, N, D = main.x.shape
        return TokenSet(main.x.new_zeros(1, 1, 1).expand(B, N, D), main.mod, main.rope, self.blocks, groups,
                        main.temb, main.context, main.context_mask, first_layer=first_layer,
                        meta={**main.meta, "kind": "depth"}, source=[g.name for g in video], branch=True)

    def loss(self, pred: Tensor, target: Tensor, pad: Tensor | None = None) -> Tensor:
        """MSE to the depth latents ``[B, F, V, C, h, w]`` over every (unpadded) frame."""
        err = (pred.float() - target.float()) ** 2
        per_frame = err.flatten(2).mean(-1)
        if pad is None:
            return per_frame.mean()
        keep = (~pad).float()
        return (per_frame * keep).sum() / keep.sum().clamp(min=1.0)
