"""ActionDiT initialised from video-expert weights (paper: "initialised from Wan weights interpolated
to its width, scaled by alpha = sqrt(d_video / d_action)"; code: ``scripts/preprocess_action_dit_backbone.py``).

Every backbone tensor of the ActionDiT (all but ``action_encoder.*`` and ``head.*``) is taken
from the video expert's tensor of the same name:

- equal shapes are copied;
- otherwise each dimension whose size differs is resized in turn by 1-D linear interpolation
  with aligned corners (first dimension first);
- a tensor with at least two dimensions whose *last* (input) dimension was resized is multiplied
  by ``alpha = sqrt(n_in_video / n_in_action)``, e.g. ``sqrt(3072 / 1024)`` for the Q/K/V inputs
  and the AdaLN tables, ``sqrt(14336 / 4096)`` for the FFN output projection. The scale keeps
  the output variance of an interpolated linear layer equal to the original's. Biases and norms
  are interpolated without scaling.

>>> from wamzoo_fast_wam.action_init import init_action_from_video
>>> init_action_from_video(policy.action_expert.dit, policy.world_model.dit)   # doctest: +SKIP

As a command, the conversion writes a backbone file for ``FastWAMAction(backbone=...)``::

    python -m wamzoo_fast_wam.action_init --video diffusion_pytorch_model-0000{1,2,3}-of-00003.safetensors \\
        --out actiondit_1024.safetensors --dim 1024 --ffn-dim 4096
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ActionDiT parameters that are not taken from the video expert (kept at their own init).
SKIP_PREFIXES = ("action_encoder.", "head.")
FORMAT = "wamzoo-fast-wam/action-backbone"


def resize(src: Tensor, shape: Sequence[int]) -> Tensor:
    """``src`` resized to ``shape`` by 1-D linear interpolation (aligned corners), one dimension at a time."""
    if src.ndim != len(shape):
        raise ValueError(f"cannot resize a tensor of shape {tuple(src.shape)} to rank-{len(shape)} shape {tuple(shape)}")
    out = src.float()
    for dim, size in enumerate(shape):
        if out.shape[dim] == size:
            continue
        moved = out.movedim(dim, -1)
        lead = moved.shape[:-1]
        flat = F.interpolate(moved.reshape(-1, 1, moved.shape[-1]), size=size, mode="linear", align_corners=True)
        out = flat.reshape(*lead, size).movedim(-1, dim)
    return out.to(src.dtype)


def scale_for(src_shape: Sequence[int], dst_shape: Sequence[int]) -> float:
    """``sqrt(n_in_src / n_in_dst)`` if the last (input) dimension of a matrix-like tensor is resized, else 1."""
    if len(src_shape) >= 2 and src_shape[-1] != dst_shape[-1]:
        return math.sqrt(src_shape[-1] / dst_shape[-1])
    return 1.0


def backbone_keys(action_state: Mapping[str, Tensor]) -> list[str]:
    return sorted(k for k in action_state if not k.startswith(SKIP_PREFIXES))


def backbone_from_video(video_state: Mapping[str, Tensor], action_state: Mapping[str, Tensor],
                        scale: bool = True) -> dict[str, Tensor]:
    """ActionDiT backbone tensors (shapes of ``action_state``) computed from ``video_state``."""
    out: dict[str, Tensor] = {}
    missing = [k for k in backbone_keys(action_state) if k not in video_state]
    if missing:
        raise KeyError(f"the video weights lack {len(missing)} ActionDiT backbone key(s), e.g. {missing[:5]};"
                       " is the ActionDiT deeper than the video expert?")
    for key in backbone_keys(action_state):
        src, dst = video_state[key], action_state[key]
        value = resize(src, dst.shape)
        if scale and tuple(src.shape) != tuple(dst.shape):
            value = (value.float() * scale_for(src.shape, dst.shape)).to(src.dtype)
        out[key] = value.to(dst.dtype)
    return out


@torch.no_grad()
def init_action_from_video(action_dit: nn.Module, video_dit: nn.Module, scale: bool = True) -> list[str]:
    """Overwrite ``action_dit``'s backbone with ``video_dit``'s weights interpolated to its width.

    Both modules use the core's names (``wamzoo.nn.action_dit.ActionDiT``,
    ``wamzoo.nn.video_dit.VideoDiT``, i.e. diffusers' Wan names). Returns the keys written.
    """
    state = backbone_from_video(video_dit.state_dict(), action_dit.state_dict(), scale)
    action_dit.load_state_dict(state, strict=False)
    return sorted(state)


def save_backbone(path: str | Path, state: Mapping[str, Tensor], meta: Mapping[str, object]) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={"format": FORMAT, "meta": json.dumps(dict(meta), sort_keys=True)})
    return path


@torch.no_grad()
def load_backbone(action_dit: nn.Module, path: str | Path) -> None:
    """Load a backbone file into ``action_dit`` (strict: every backbone key, right shapes)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ActionDiT backbone {path} does not exist; write it with"
                                " `python -m wamzoo_fast_wam.action_init` or set `backbone: null`")
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}).get("format") != FORMAT:
            raise ValueError(f"{path} is not an ActionDiT backbone file ({FORMAT})")
        state = {k: f.get_tensor(k) for k in f.keys()}
    own = action_dit.state_dict()
    expected = set(backbone_keys(own))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(expected & set(state))
              if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{path} does not fit this ActionDiT: missing {missing[:5]}, unexpected {unexpected[:5]},"
                         f" wrong shape {shapes[:5]}")
    action_dit.load_state_dict(state, strict=False)


def _read_weights(paths: Sequence[str]) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    from wamzoo.hub import load_weights_only

    state: dict[str, Tensor] = {}
    for p in paths:
        state.update(load_file(p) if p.endswith(".safetensors") else load_weights_only(p))
    return state


def main(argv: Sequence[str] | None = None) -> int:
    """Convert video-expert weights (diffusers Wan names) into an ActionDiT backbone file."""
    p = argparse.ArgumentParser(prog="python -m wamzoo_fast_wam.action_init", description=main.__doc__)
    p.add_argument("--video", nargs="+", required=True, help="video DiT weights (.safetensors shards or .pt)")
    p.add_argument("--out", required=True)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--ffn-dim", type=int, default=4096)
    p.add_argument("--num-layers", type=int, default=None, help="default: the video expert's")
    p.add_argument("--num-heads", type=int, default=None, help="default: the video expert's")
    p.add_argument("--head-dim", type=int, default=None, help="default: 128 (Wan)")
    p.add_argument("--no-scale", action="store_true", help="skip the alpha = sqrt(d_in_video / d_in_action) scaling")
    args = p.parse_args(argv)

    from wamzoo.errors import LoadError
    from wamzoo.nn.action_dit import ActionDiT

    try:
        video = _read_weights(args.video)
    except LoadError as exc:
        p.exit(2, f"error: {exc}\n")
    layers = args.num_layers or 1 + max(int(k.split(".")[1]) for k in video if k.startswith("blocks."))
    inner = video["blocks.0.attn1.to_q.weight"].shape[0]
    head_dim = args.head_dim or (inner // args.num_heads if args.num_heads else 128)
    heads = args.num_heads or inner // head_dim
    text_dim = video["condition_embedder.text_embedder.linear_1.weight"].shape[1]
    freq_dim = video["condition_embedder.time_embedder.linear_1.weight"].shape[1]
    with torch.device("meta"):
        action = ActionDiT(1, args.dim, args.ffn_dim, layers, heads, head_dim, text_dim, freq_dim)
    shapes = {k: torch.empty(v.shape, dtype=video[k].dtype if k in video else torch.float32)
              for k, v in action.state_dict().items()}
    state = backbone_from_video(video, shapes, scale=not args.no_scale)
    meta = {"dim": args.dim, "ffn_dim": args.ffn_dim, "num_layers": layers, "num_heads": heads, "head_dim": head_dim,
            "context_dim": text_dim, "freq_dim": freq_dim, "scaled": not args.no_scale}
    out = save_backbone(args.out, state, meta)
    print(f"wrote {len(state)} tensors to {out} ({meta})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
