"""X-WAM's two inference modes on a composed :class:`~wamzoo.policy.WAMPolicy`.

- early stop (``policy.predict_action``; the scheduler's default plan): the joint sequence is
  denoised for ``T_a`` steps, actions and state are then clean and returned; the depth branch
  never runs.
- full (:func:`predict_4d`): the same phase runs to ``T_O`` (actions stay clean after ``T_a``),
  the depth readout is taken at the last step (the code takes the depth branch's output of the
  last step), and the future RGB, metric depth and the fused point clouds are returned.

>>> out = predict_4d(policy, observation)            # doctest: +SKIP
>>> out["rgb"].shape, out["depth"].shape, len(out["points"])
"""

from __future__ import annotations

from typing import Any

import torch

from wamzoo.batch import Batch
from wamzoo.policy import WAMPolicy

from wamzoo_x_wam.depth_branch import pixels_to_depth
from wamzoo.geometry import point_cloud


@torch.no_grad()
def predict_4d(policy: WAMPolicy, obs: Batch, generator: torch.Generator | None = None,
               max_depth: float | None = 3.0) -> dict[str, Any]:
    """Actions, future RGB ``[B, T, V, 3, H, W]``, depth ``[B, T, V, 1, H, W]`` (metres) and points.

    ``points[b][t]`` is the ``[N, 3]`` world point cloud of predicted future frame ``t`` fused over
    the views (needs ``obs.intrinsics`` and ``obs.extrinsics``; cameras are taken as fixed over the
    window). Frames are pixel frames after the observed ones.
    """
    wm = policy.world_model
    if getattr(wm, "depth", None) is None:
        raise ValueError("this policy has no depth branch (world_model.depth_layers = 0)")
    plan = policy.scheduler.plan(early_stop=False)
    out = policy.predict(obs, generator, decode=True, readouts=True, plan=plan)
    n_obs = obs.n_obs
    rgb = out["frames"][:, n_obs:]
    depth_px = policy.codec.decode(out["streams"]["depth"].x)
    depth = pixels_to_depth(depth_px, wm.depth_near)[:, n_obs:]
    points = None
    if obs.intrinsics is not None and obs.extrinsics is not None:
        points = [[point_cloud(depth[b, t], obs.intrinsics[b], obs.extrinsics[b], max_depth=max_depth)[0]
                   for t in range(depth.shape[1])] for b in range(depth.shape[0])]
    return {"action": out["action"], "rgb": rgb, "depth": depth, "points": points, "streams": out["streams"]}
