"""The batch contract shared by datasets, policies and the evaluator.

One :class:`Batch` carries a training window or an observation:

============== =========================== ==================================================
field          shape                       meaning
============== =========================== ==================================================
rgb            ``[B, T, V, 3, H, W]``      multi-view frames, uint8 or float in [0, 1]; the
                                           first ``n_obs`` frames are observed (history ending
                                           at the current frame), the rest are future frames
depth          ``[B, T, V, 1, H, W]``      optional metric depth in metres, aligned with rgb
state          ``[B, S]``                  proprioception at the current step
action         ``[B, K, A]``               action chunk starting at the current step
action_pad     ``[B, K]`` bool             True where the chunk runs past the episode end
frame_pad      ``[B, T]`` bool             True where a frame is padding
task_id        ``[B]`` long                task index (learned task embedding)
instruction    ``[B, L, D]``               precomputed instruction embedding (e.g. T5)
instruction_mask ``[B, L]`` bool           valid instruction tokens
intrinsics     ``[B, V, 3, 3]``            pinhole intrinsics per view (pixels)
extrinsics     ``[B, V, 4, 4]``            camera-to-world transform per view (OpenCV axes)
rgb_now        ``[B, 1, V, 3, H, W]``      the present frame when ``rgb`` lags it (a slow camera or
                                           planner, ``wamzoo eval --frame-lag``); else absent
step_rgb       ``[B, K, V, 3, H, W]``      training: the frame before each action of the chunk
step_state     ``[B, K, S]``               training: the proprioception before each action
future_state   ``[B, F, S]``               training: the proprioception at each future frame
extras         ``dict[str, Tensor]``       recipe-defined per-step labels (``data.extras``), batch-first
============== =========================== ==================================================

An *observation* is a batch without future frames (``T == n_obs``) and without ``action``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from wamzoo.errors import BatchError

_TENSOR_FIELDS = ("rgb", "depth", "state", "action", "action_pad", "frame_pad", "task_id", "instruction",
                  "instruction_mask", "intrinsics", "extrinsics", "rgb_now", "step_rgb", "step_state", "future_state")


@dataclass
class Batch:
    rgb: Tensor
    n_obs: int = 1
    state: Tensor | None = None
    action: Tensor | None = None
    depth: Tensor | None = None
    action_pad: Tensor | None = None
    frame_pad: Tensor | None = None
    task_id: Tensor | None = None
    instruction: Tensor | None = None
    instruction_mask: Tensor | None = None
    intrinsics: Tensor | None = None
    extrinsics: Tensor | None = None
    rgb_now: Tensor | None = None
    step_rgb: Tensor | None = None
    step_state: Tensor | None = None
    future_state: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    # -- shape helpers -----------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def num_views(self) -> int:
        return int(self.rgb.shape[2])

    @property
    def n_future(self) -> int:
        return int(self.rgb.shape[1]) - self.n_obs

    def rgb_float(self) -> Tensor:
        """Frames as float32 in [0, 1]."""
        return self.rgb.float() / 255.0 if self.rgb.dtype == torch.uint8 else self.rgb.float()

    # -- transforms --------------------------------------------------------------------------
    def replace(self, **changes: Any) -> "Batch":
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str) -> "Batch":
        moved = {k: (getattr(self, k).to(device) if getattr(self, k) is not None else None) for k in _TENSOR_FIELDS}
        extras = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.extras.items()}
        return self.replace(**moved, extras=extras)

    def index(self, rows: list[int]) -> "Batch":
        """The samples at ``rows``, in that order (extras too)."""
        take = lambda x: None if x is None else x[rows]  # noqa: E731
        return self.replace(**{k: take(getattr(self, k)) for k in _TENSOR_FIELDS},
                            extras={k: v[rows] if isinstance(v, Tensor) else v for k, v in self.extras.items()})

    def observation(self) -> "Batch":
        """The observed part: frames up to the current one, no action."""
        cut = lambda x: None if x is None else x[:, : self.n_obs]  # noqa: E731
        return self.replace(rgb=self.rgb[:, : self.n_obs], depth=cut(self.depth), frame_pad=cut(self.frame_pad),
                            action=None, action_pad=None, step_rgb=None, step_state=None, future_state=None)

    def validate(self, *, need_action: bool = False) -> "Batch":
        """Check the contract; raise :class:`BatchError` naming the offending field."""
        if not isinstance(self.rgb, Tensor) or self.rgb.ndim != 6 or self.rgb.shape[3] != 3:
            raise BatchError(f"rgb must be [B, T, V, 3, H, W], got {_shape(self.rgb)}; stack views on dim 2"
                             " and put channels first")
        if self.rgb.dtype != torch.uint8 and not self.rgb.is_floating_point():
            raise BatchError(f"rgb must be uint8 or float in [0, 1], got {self.rgb.dtype}")
        B, T, V, _, H, W = self.rgb.shape
        if not 1 <= self.n_obs <= T:
            raise BatchError(f"n_obs={self.n_obs} must be within 1..T={T}")
        expect = {
            "depth": (B, T, V, 1, H, W), "state": (B, None), "action": (B, None, None),
            "frame_pad": (B, T), "task_id": (B,), "instruction": (B, None, None),
            "intrinsics": (B, V, 3, 3), "extrinsics": (B, V, 4, 4), "rgb_now": (B, 1, V, 3, H, W),
            "step_rgb": (B, None, V, 3, H, W), "step_state": (B, None, None), "future_state": (B, None, None),
        }
        if self.action is not None:
            expect["action_pad"] = (B, self.action.shape[1])
        if self.instruction is not None:
            expect["instruction_mask"] = (B, self.instruction.shape[1])
        for name, shape in expect.items():
            value = getattr(self, name)
            if value is None:
                continue
            if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
                want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
                raise BatchError(f"{name} must have shape {want} (B={B}, T={T}, V={V}, H={H}, W={W}),"
                                 f" got {_shape(value)}")
        if self.task_id is not None and self.task_id.dtype not in (torch.int64, torch.int32):
            raise BatchError(f"task_id must be an integer tensor, got {self.task_id.dtype}")
        if need_action and self.action is None:
            raise BatchError("training needs `action` [B, K, A]; the dataset did not provide it")
        for name, value in self.extras.items():
            if isinstance(value, Tensor) and value.shape[:1] != (B,):
                raise BatchError(f"extras[{name!r}] must be batch-first with B={B}, got {_shape(value)}")
        return self

    def check_fits(self, info: Any, resizes: bool = False) -> "Batch":
        """Check an observation against the ``DataInfo`` a policy was built for (``None``: shapes unchecked):
        its views and, unless the policy ``resizes`` frames itself (its codec says so), their size; the
        width of ``state``; finite values in ``rgb`` and ``state``."""
        self.validate()
        _, _, V, _, H, W = self.rgb.shape
        want = None if info is None else (info.num_views,) if resizes else (info.num_views, info.height, info.width)
        if want is not None and (V, H, W)[: len(want)] != want:
            cams = f" ({', '.join(info.cameras)})" if info.cameras else ""
            size = "H, W" if resizes else f"{info.height}, {info.width}"
            raise BatchError(f"rgb must be [B, T, {info.num_views}, 3, {size}] for this policy, got {_shape(self.rgb)};"
                             f" give it its {info.num_views} view(s){cams}"
                             + ("" if resizes else f" at {info.height}x{info.width} pixels"))
        if want is not None and self.state is not None and self.state.shape[1] != info.state_dim:
            raise BatchError(f"state must be [B, {info.state_dim}] for this policy, got {_shape(self.state)}; give"
                             f" the {info.state_dim} proprioception values it was trained on")
        for name in ("rgb", "state"):
            value = getattr(self, name)
            bad = None if value is None or not value.is_floating_point() else (~torch.isfinite(value)).nonzero()
            if bad is not None and len(bad):
                index = bad[0].tolist()
                raise BatchError(f"{name} holds {value[tuple(index)].item()} at index {index}; the policy needs finite"
                                 " values: fill or drop that observation before calling it")
        return self

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Batch":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and k != "extras"}
        extras = dict(data.get("extras", {}))
        extras.update({k: v for k, v in data.items() if k not in known})
        if "n_obs" in kwargs and isinstance(kwargs["n_obs"], Tensor):
            kwargs["n_obs"] = int(kwargs["n_obs"].flatten()[0])
        return cls(**kwargs, extras=extras)

    @classmethod
    def collate(cls, samples: Iterable[Mapping[str, Any]]) -> "Batch":
        """Stack per-sample dicts (unbatched fields) into a :class:`Batch`."""
        samples = list(samples)
        if not samples:
            raise BatchError("cannot collate an empty list of samples")
        keys = samples[0].keys()
        out: dict[str, Any] = {}
        for k in keys:
            values = [s[k] for s in samples]
            if k == "n_obs":
                if len(set(int(v) for v in values)) != 1:
                    raise BatchError("all samples of a batch must share n_obs")
                out[k] = int(values[0])
            elif isinstance(values[0], Tensor):  # numpy: a single-threaded copy (torch's is slow on a busy CPU)
                out[k] = torch.from_numpy(np.stack([v.numpy() for v in values]))
            elif isinstance(values[0], (int, float, bool)):
                out[k] = torch.tensor(values)
            else:
                out[k] = values
        return cls.from_dict(out)


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__
