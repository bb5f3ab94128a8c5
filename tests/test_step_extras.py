"""Per-step extras of demonstration windows (``data.extras``): computed per episode, read at the current step."""

from types import SimpleNamespace

import numpy as np
import pytest

from wamzoo.data.dataset import step_extras
from wamzoo.errors import WamzooError


def step_index(columns, offset=0):
    """A per-step function: the step's index in its episode plus ``offset``; checks what it receives."""
    assert columns["action"].shape[0] == columns["state"].shape[0]
    return np.arange(len(columns["action"])) + offset + 10 * columns["state"][:, 0]


def _frames():
    lengths = [3, 5, 2]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    episode = np.repeat(np.arange(3), lengths)
    return SimpleNamespace(start=np.repeat(starts, lengths), end=np.repeat(ends, lengths),
                           action=np.zeros((10, 4), np.float32), state=episode[:, None].repeat(4, 1).astype(np.float32))


def test_step_extras_run_per_episode_with_arguments():
    out = step_extras(_frames(), {"idx": f"{__name__}:step_index",
                                  "shifted": {"fn": f"{__name__}:step_index", "offset": 100}})
    np.testing.assert_array_equal(out["idx"], [0, 1, 2, 10, 11, 12, 13, 14, 20, 21])
    np.testing.assert_array_equal(out["shifted"], out["idx"] + 100)


def test_step_extras_errors_name_the_extra():
    with pytest.raises(WamzooError, match="data.extras.bad: cannot import 'nowhere:fn'"):
        step_extras(_frames(), {"bad": "nowhere:fn"})
    with pytest.raises(WamzooError, match="data.extras.short: .* returned 2 values for an episode of 3 steps"):
        step_extras(_frames(), {"short": f"{__name__}:_two"})


def _two(columns):
    return np.zeros(2)
