"""Shared fixtures of the Fast-WAM tests: tiny policies on synthetic windows."""

import pytest
import torch

from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.training import make_datamodule

TINY = {"default": "fast-wam-tiny", "joint": "fast-wam-joint-tiny", "idm": "fast-wam-idm-tiny",
        "novideo": "fast-wam-novideo-tiny"}


def build(variant: str, overrides=(), seed: int = 0):
    recipe = compose(TINY[variant], list(overrides))
    dm = make_datamodule(recipe)
    info = dm.info()
    torch.manual_seed(seed)
    policy = WAMPolicy.from_config(recipe.policy, info)
    batch = next(iter(dm.train_dataloader()))
    return policy, batch


@pytest.fixture
def fast_wam():
    """``fast_wam(variant, overrides=(), seed=0)`` -> a fresh tiny (policy, batch)."""
    return build


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not spin against other jobs on a shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
