"""Shared fixtures."""

import pytest

MW_TASKS = ["reach-v3", "drawer-close-v3"]


@pytest.fixture(scope="session")
def mw_dataset(tmp_path_factory):
    """A tiny Meta-World demonstration dataset (2 tasks x 1 episode, 32 px, 2 views), built once."""
    from wamzoo.data.generate import generate

    return generate(tmp_path_factory.mktemp("mw") / "ds", MW_TASKS, episodes=1, workers=0, size=32,
                    progress=False)
