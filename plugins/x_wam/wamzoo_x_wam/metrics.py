"""4D metrics of X-WAM's full-mode predictions against the simulator's ground truth (X-WAM §4.3).

- RGB: PSNR and SSIM (Gaussian window 11, sigma 1.5, valid region, as the X-WAM runner's
  ``_ssim``) of the predicted future frames; LPIPS only if the ``lpips`` package and its weights are
  available (``None`` otherwise).
- Depth: AbsRel ``mean(|d - d*| / d*)`` and delta_1 ``mean(max(d / d*, d* / d) < 1.25)`` over pixels
  whose true depth is within ``max_depth`` (Meta-World's background is the far plane, ~113 m).
- Geometry: Chamfer distance between the point clouds fused over all views from predicted and
  true depth (same cameras, same ``max_depth`` cut): ``(mean_p min_q |p - q| + mean_q min_p |q - p|) / 2``
  in metres, on at most ``max_points`` points per cloud drawn with a fixed seed.

Every metric is also reported for a *copy-current-frame* baseline (the observed frame and its true
depth repeated into the future), so numbers say whether the model predicts anything.

Command (held-out episodes: a dataset generated from training seeds the policy never saw)::

    wamzoo data metaworld --suite mw-easy --episodes 4 --seed 500000 --out data/metaworld/mw-easy-64-heldout
    wamzoo-x-wam-metrics runs/x-wam --data data/metaworld/mw-easy-64-heldout --windows 64 \\
        --json results/x_wam_4d_x-wam.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wamzoo.geometry import point_cloud


# -- image metrics ---------------------------------------------------------------------------
def psnr(pred: Tensor, gt: Tensor) -> Tensor:
    """PSNR (dB) per image of ``[..., C, H, W]`` tensors in [0, 1]."""
    mse = ((pred.float() - gt.float()) ** 2).flatten(-3).mean(-1)
    return 10.0 * torch.log10(1.0 / mse.clamp(min=1e-10))


def ssim(pred: Tensor, gt: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM per image of ``[..., C, H, W]`` tensors in [0, 1] (Gaussian window, valid region)."""
    shape = pred.shape[:-3]
    x, y = pred.float().reshape(-1, *pred.shape[-3:]), gt.float().reshape(-1, *gt.shape[-3:])
    C = x.shape[1]
    coords = torch.arange(window, dtype=torch.float32) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(C, 1, window, window).contiguous()
    mu_x, mu_y = F.conv2d(x, k, groups=C), F.conv2d(y, k, groups=C)
    sxx = F.conv2d(x * x, k, groups=C) - mu_x**2
    syy = F.conv2d(y * y, k, groups=C) - mu_y**2
    sxy = F.conv2d(x * y, k, groups=C) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).reshape(shape)


def lpips_fn():
    """An LPIPS(alex) callable on [0, 1] images, or ``None`` when ``lpips`` or its weights are unavailable."""
    try:
        import lpips  # type: ignore

        net = lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception:  # not installed, or weights cannot be fetched offline
        return None
    return lambda p, g: net(p.reshape(-1, *p.shape[-3:]) * 2 - 1, g.reshape(-1, *g.shape[-3:]) * 2 - 1).flatten()


# -- depth and geometry ----------------------------------------------------------------------
def depth_errors(pred: Tensor, gt: Tensor, max_depth: float | None = None) -> dict[str, float]:
    """AbsRel and delta_1 over valid pixels (true depth finite, positive, within ``max_depth``)."""
    p, g = pred.double().flatten(), gt.double().flatten()
    valid = torch.isfinite(g) & (g > 0)
    if max_depth is not None:
        valid &= g <= max_depth
    p, g = p[valid].clamp(min=1e-6), g[valid]
    if not len(g):
        return {"abs_rel": math.nan, "delta1": math.nan, "pixels": 0}
    return {"abs_rel": float(((p - g).abs() / g).mean()), "delta1": float((torch.maximum(p / g, g / p) < 1.25)
                                                                         .double().mean()), "pixels": int(len(g))}


def chamfer(a: Tensor, b: Tensor, max_points: int | None = 4096, seed: int = 0) -> float:
    """Symmetric Chamfer distance (mean nearest-neighbour L2, averaged over both directions)."""
    if not len(a) or not len(b):
        return math.nan
    g = torch.Generator().manual_seed(seed)
    if max_points is not None:
        a = a[torch.randperm(len(a), generator=g)[:max_points]] if len(a) > max_points else a
        b = b[torch.randperm(len(b), generator=g)[:max_points]] if len(b) > max_points else b
    a, b = a.double(), b.double()

    def nn_mean(x: Tensor, y: Tensor) -> Tensor:
        return torch.cat([torch.cdist(c, y).min(1).values for c in x.split(2048)]).mean()

    return float((nn_mean(a, b) + nn_mean(b, a)) / 2)


# -- evaluation of a policy ------------------------------------------------------------------
def score(pred_rgb: Tensor, pred_depth: Tensor, gt_rgb: Tensor, gt_depth: Tensor, intrinsics: Tensor,
          extrinsics: Tensor, max_depth: float = 3.0, lpips=None) -> dict[str, list[float]]:
    """Per-frame metrics of one window: ``[T, V, C, H, W]`` predictions and truths, ``[V, ...]`` cameras."""
    out: dict[str, list[float]] = {"psnr": [], "ssim": [], "abs_rel": [], "delta1": [], "chamfer": []}
    if lpips is not None:
        out["lpips"] = []
    for t in range(pred_rgb.shape[0]):
        out["psnr"].append(float(psnr(pred_rgb[t], gt_rgb[t]).mean()))
        out["ssim"].append(float(ssim(pred_rgb[t], gt_rgb[t]).mean()))
        if lpips is not None:
            out["lpips"].append(float(lpips(pred_rgb[t], gt_rgb[t]).mean()))
        d = depth_errors(pred_depth[t], gt_depth[t], max_depth)
        out["abs_rel"].append(d["abs_rel"])
        out["delta1"].append(d["delta1"])
        p, _ = point_cloud(pred_depth[t], intrinsics, extrinsics, max_depth=max_depth)
        q, _ = point_cloud(gt_depth[t], intrinsics, extrinsics, max_depth=max_depth)
        out["chamfer"].append(chamfer(p, q, seed=t))
    return out


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


@torch.no_grad()
def evaluate_4d(policy, batches, max_depth: float = 3.0, seed: int = 0, with_lpips: bool = True) -> dict[str, Any]:
    """Mean 4D metrics of ``policy`` (full mode) and of the copy-current-frame baseline over ``batches``."""
    from wamzoo_x_wam.inference import predict_4d

    lp = lpips_fn() if with_lpips else None
    model: dict[str, list[float]] = {}
    base: dict[str, list[float]] = {}
    seconds, windows = 0.0, 0
    for i, batch in enumerate(batches):
        if batch.depth is None or batch.intrinsics is None or batch.extrinsics is None:
            raise ValueError("4D metrics need depth, intrinsics and extrinsics in the windows (data.depth: true)")
        obs = batch.observation()
        t0 = time.perf_counter()
        out = predict_4d(policy, obs, generator=torch.Generator().manual_seed(seed + i), max_depth=max_depth)
        seconds += time.perf_counter() - t0
        n = batch.n_obs
        gt_rgb, gt_depth = batch.rgb_float()[:, n:], batch.depth.float()[:, n:]
        T = gt_rgb.shape[1]
        for b in range(batch.batch_size):
            pad = batch.frame_pad[b, n:] if batch.frame_pad is not None else torch.zeros(T, dtype=torch.bool)
            keep = ~pad
            if not keep.any():
                continue
            K, E = batch.intrinsics[b], batch.extrinsics[b]
            s = score(out["rgb"][b][keep], out["depth"][b][keep], gt_rgb[b][keep], gt_depth[b][keep], K, E,
                      max_depth, lp)
            now_rgb = batch.rgb_float()[b, n - 1: n].expand(T, *gt_rgb.shape[2:])[keep]
            now_depth = batch.depth.float()[b, n - 1: n].expand(T, *gt_depth.shape[2:])[keep]
            c = score(now_rgb, now_depth, gt_rgb[b][keep], gt_depth[b][keep], K, E, max_depth, lp)
            for k, v in s.items():
                model.setdefault(k, []).extend(v)
            for k, v in c.items():
                base.setdefault(k, []).extend(v)
            windows += 1
    return {"model": {k: _mean(v) for k, v in model.items()}, "copy_current_frame": {k: _mean(v) for k, v in base.items()},
            "windows": windows, "frames": len(model.get("psnr", [])), "max_depth": max_depth,
            "lpips": "computed" if lp is not None else "unavailable (no lpips package/weights offline)",
            "seconds_per_window": seconds / max(windows, 1)}


def heldout_batches(policy, root: str, windows: int, batch_size: int = 8, seed: int = 0):
    """``windows`` windows (evenly spaced over the dataset, shaped like the policy's training windows)."""
    from wamzoo.batch import Batch

    from wamzoo_x_wam.data import XWAMMetaWorldDataModule

    info = policy.info
    dm = XWAMMetaWorldDataModule(root=root, horizon=info.horizon, n_obs=info.n_obs, n_future=info.n_future,
                                 frame_stride=info.frame_stride, cameras=list(info.cameras) or None, depth=True,
                                 tasks=[t for t in info.tasks], num_workers=0)
    ds = dm.windows()
    if ds.tasks != list(info.tasks):
        raise ValueError(f"held-out tasks {ds.tasks} differ from the policy's {info.tasks}")
    step = max(1, len(ds) // windows)
    idx = [(seed + i * step) % len(ds) for i in range(min(windows, len(ds)))]
    for i in range(0, len(idx), batch_size):
        yield Batch.collate([ds[j] for j in idx[i: i + batch_size]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wamzoo-x-wam-metrics", description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="run folder, checkpoint or saved policy folder")
    ap.add_argument("--data", required=True, help="held-out LeRobot dataset (with depth)")
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-depth", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from wamzoo.loading import load_policy

    policy = load_policy(args.target).eval()
    res = evaluate_4d(policy, heldout_batches(policy, args.data, args.windows, args.batch_size, args.seed),
                      args.max_depth, args.seed)
    res.update(target=args.target, data=args.data, video_steps=getattr(policy.scheduler, "video_steps", None))
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
