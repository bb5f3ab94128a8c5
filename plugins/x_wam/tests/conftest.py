"""Shared fixtures of the X-WAM tests: tiny policies and hand-made RGB-D windows.

The core's synthetic data has no depth, cameras or future states, so the windows here add them:
random frames, depth between 0.5 and 1.5 m, pinhole cameras, and future states.
"""

import math

import pytest
import torch

from wamzoo.batch import Batch
from wamzoo.testing import one_thread  # noqa: F401  (autouse)
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.training import make_datamodule

TINY = {"ans": "x-wam-tiny", "decoupled": "x-wam-decoupled-tiny", "sync": "x-wam-sync-tiny"}


def build(variant: str = "ans", overrides=(), seed: int = 0):
    recipe = compose(TINY[variant], ["policy.action_expert.state_tokens=frames", *overrides])
    info = make_datamodule(recipe).info()
    torch.manual_seed(seed)
    return WAMPolicy.from_config(recipe.policy, info), info


def window(info, batch_size: int = 2, seed: int = 0, train: bool = True) -> Batch:
    g = torch.Generator().manual_seed(seed)
    B, V, H, W = batch_size, info.num_views, info.height, info.width
    T = info.n_obs + (info.n_future if train else 0)
    f = H / (2 * math.tan(math.radians(45) / 2))
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
    batch = Batch(rgb=torch.randint(0, 256, (B, T, V, 3, H, W), generator=g, dtype=torch.uint8), n_obs=info.n_obs,
                  state=torch.randn(B, info.state_dim, generator=g),
                  depth=0.5 + torch.rand(B, T, V, 1, H, W, generator=g),
                  task_id=torch.randint(len(info.tasks), (B,), generator=g),
                  intrinsics=K.expand(B, V, 3, 3).clone(), extrinsics=torch.eye(4).expand(B, V, 4, 4).clone())
    if train:
        batch.action = torch.randn(B, info.horizon, info.action_dim, generator=g)
        batch.action_pad = torch.zeros(B, info.horizon, dtype=torch.bool)
        batch.future_state = torch.randn(B, info.n_future, info.state_dim, generator=g)
    return batch


@pytest.fixture
def x_wam():
    """``x_wam(variant="ans", overrides=(), seed=0)`` -> a fresh tiny (policy, data info)."""
    return build


@pytest.fixture
def rgbd_window():
    """``rgbd_window(info, batch_size=2, seed=0, train=True)`` -> a Batch with depth, cameras, future states."""
    return window
