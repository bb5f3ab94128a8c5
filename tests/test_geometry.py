"""Depth -> point cloud lifting against known geometry."""

import math

import torch

from wamzoo.geometry import intrinsics_from_fovy, lift, point_cloud, project


def _look_down(height: float) -> torch.Tensor:
    """Camera-to-world of a camera at (0.3, -0.2, height) looking straight down (OpenCV axes)."""
    E = torch.eye(4)
    E[:3, :3] = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # x right, y down = -world y, z = -world z
    E[:3, 3] = torch.tensor([0.3, -0.2, height])
    return E


def test_plane_at_known_distance_lifts_to_that_plane():
    K = intrinsics_from_fovy(60.0, 24, 32)
    assert math.isclose(float(K[1, 1]), 12 / math.tan(math.radians(30)), rel_tol=1e-6)
    assert (float(K[0, 2]), float(K[1, 2])) == (15.5, 11.5)
    depth = torch.full((1, 24, 32), 1.7)
    cam = lift(depth, K, torch.eye(4))
    assert torch.allclose(cam[..., 2], torch.full((24, 32), 1.7))
    # pixel (15, 11) lies half a pixel up-left of the principal point (15.5, 11.5)
    assert torch.allclose(cam[11, 15, :2], torch.tensor([-0.5, -0.5]) * 1.7 / K[0, 0], atol=1e-6)
    world = lift(depth, K, _look_down(2.0))
    assert torch.allclose(world[..., 2], torch.full((24, 32), 0.3), atol=1e-6)   # floor 1.7 m below the camera


def test_lift_and_project_are_inverse_and_views_fuse():
    g = torch.Generator().manual_seed(0)
    K = intrinsics_from_fovy(45.0, 16, 16)
    E = torch.stack([_look_down(2.0), torch.eye(4)])
    depth = 0.5 + torch.rand(2, 1, 16, 16, generator=g)
    pts = lift(depth, K.expand(2, 3, 3), E)
    assert pts.shape == (2, 16, 16, 3)
    uv, z = project(pts[0].reshape(-1, 3), K, E[0])
    v, u = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    assert torch.allclose(uv, torch.stack([u, v], -1).reshape(-1, 2).double(), atol=1e-4)
    assert torch.allclose(z, depth[0, 0].reshape(-1).double(), atol=1e-5)
    depth[1, 0, :4] = 100.0   # far plane: dropped by max_depth
    rgb = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8, generator=g)
    xyz, colors = point_cloud(depth, K.expand(2, 3, 3), E, rgb=rgb, max_depth=10.0)
    assert xyz.shape == (2 * 256 - 64, 3) and colors.shape == (2 * 256 - 64, 3)
    assert torch.equal(colors[0], rgb[0, :, 0, 0])
