"""Shared fixtures of the AHA-WAM tests: tiny policies on synthetic windows with per-step observations."""

import pytest
import torch

from wamzoo.testing import one_thread, tiny_policy  # noqa: F401  (one_thread: autouse)

TINY = {"default": "aha-wam-tiny", "no-ovcr": "aha-wam-no-ovcr-tiny", "no-offset": "aha-wam-no-offset-tiny"}


def build(variant: str = "default", overrides=(), seed: int = 0, batch_size: int = 2):
    return tiny_policy(TINY[variant], [f"trainer.batch_size={batch_size}", *overrides], seed)


@pytest.fixture
def aha_wam():
    """``aha_wam(variant="default", overrides=(), seed=0, batch_size=2)`` -> a fresh tiny (policy, batch)."""
    return build


def _training_streams(policy, batch, seed: int = 0):
    """Streams and conditioning of a training pass, noised as ``WAMPolicy.compute_loss`` does."""
    from wamzoo.nn.flow_matching import interpolate

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    streams, cond = policy.build_streams(batch, train=True)
    policy.scheduler.sample_timesteps(streams, g)
    for s in streams.values():
        if s.denoised:
            s.x0, s.noise = s.x, torch.randn(s.x.shape, generator=g)
            s.x = interpolate(s.x0, s.noise, s.t)
    return streams, cond


@pytest.fixture
def training_streams():
    """``training_streams(policy, batch, seed=0)`` -> noised training (streams, cond)."""
    return _training_streams
