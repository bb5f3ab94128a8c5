"""Shared fixtures of the Fast-WAM tests: tiny policies on synthetic windows."""

import pytest

from wamzoo.testing import one_thread, tiny_policy  # noqa: F401  (one_thread: autouse)

TINY = {"default": "fast-wam-tiny", "joint": "fast-wam-joint-tiny", "idm": "fast-wam-idm-tiny",
        "novideo": "fast-wam-novideo-tiny"}


def build(variant: str, overrides=(), seed: int = 0):
    return tiny_policy(TINY[variant], overrides, seed)


@pytest.fixture
def fast_wam():
    """``fast_wam(variant, overrides=(), seed=0)`` -> a fresh tiny (policy, batch)."""
    return build
