"""Point-cloud lifting against a known plane, and the 4D metrics on known inputs."""

import math

import torch

from wamzoo.geometry import lift, point_cloud
from wamzoo_x_wam.metrics import chamfer, depth_errors, psnr, ssim


def _tilted_camera(H=24, W=32, height=1.2, pitch_deg=30.0):
    """A camera at (0, 0, height) looking down at the plane z = 0, tilted ``pitch_deg`` from the vertical."""
    f = 20.0
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    p = math.radians(pitch_deg)
    # camera axes in the world: x right, y down (in image), z forward (optical axis)
    z = torch.tensor([0.0, math.sin(p), -math.cos(p)], dtype=torch.float64)
    x = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    y = torch.linalg.cross(z, x)
    E = torch.eye(4, dtype=torch.float64)
    E[:3, :3] = torch.stack([x, y, z], 1)
    E[:3, 3] = torch.tensor([0.0, 0.0, height], dtype=torch.float64)
    # true depth: the ray R K^-1 [u, v, 1] (unit z in the camera) meets z = 0 at lambda = -h / ray_z
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    rays = torch.stack([(u - K[0, 2]) / f, (v - K[1, 2]) / f, torch.ones_like(u)], -1) @ E[:3, :3].T
    depth = -height / rays[..., 2]
    return depth[None], K, E, rays


def test_lifting_puts_a_plane_back_on_the_plane():
    depth, K, E, rays = _tilted_camera()
    assert (depth > 0).all()
    pts = lift(depth.float(), K.float(), E.float())
    assert pts.shape == (24, 32, 3)
    assert pts[..., 2].abs().max() < 1e-4  # every pixel lands on z = 0
    expect = E[:3, 3] + depth[0, ..., None] * rays
    torch.testing.assert_close(pts.double(), expect, atol=1e-4, rtol=0)
    # far pixels are dropped from fused clouds; two views of the same plane fuse on it
    far = depth.clone()
    far[0, :4] = 113.0
    fused, _ = point_cloud(torch.stack([far, depth]).float(), torch.stack([K, K]).float(), torch.stack([E, E]).float(),
                           max_depth=3.0)
    assert len(fused) == 2 * 24 * 32 - 4 * 32 and fused[:, 2].abs().max() < 1e-4


def test_image_and_depth_metrics_on_known_inputs():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 32, 32, generator=g)
    assert torch.isinf(psnr(img, img)).logical_not().all() and psnr(img, img).min() > 90
    noisy = (img + 0.1).clamp(0, 1)
    mse = ((noisy - img) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(psnr(noisy, img), 10 * torch.log10(1 / mse))
    torch.testing.assert_close(ssim(img, img), torch.ones(2))
    assert (ssim(torch.rand(2, 3, 32, 32, generator=g), img) < 0.2).all()
    gt = torch.full((1, 4, 4), 2.0)
    d = depth_errors(gt * 1.1, gt)
    assert abs(d["abs_rel"] - 0.1) < 1e-6 and d["delta1"] == 1.0
    d = depth_errors(gt * 1.3, gt)
    assert d["delta1"] == 0.0
    gt[0, 0, 0] = 113.0  # beyond max_depth: ignored
    assert depth_errors(gt * 1.1, gt, max_depth=3.0)["pixels"] == 15


def test_chamfer_distance():
    pts = torch.rand(500, 3, generator=torch.Generator().manual_seed(1))
    assert chamfer(pts, pts) == 0
    shifted = pts + torch.tensor([0.0, 0.0, 0.01])
    assert abs(chamfer(pts, shifted) - 0.01) < 2e-3  # nearest neighbours are the shifted copies
    assert math.isnan(chamfer(pts[:0], pts))
