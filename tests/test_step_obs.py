"""Per-step observations over the action chunk (``step_obs``): what is seen before every action."""

import numpy as np
import pytest
import torch

from wamzoo.data.dataset import Windows
from wamzoo.data.lerobot import LeRobotFrames
from wamzoo.data.synthetic import SyntheticDataModule


def _raw(root, task, seed=0):
    return dict(np.load(root / "raw" / task / f"{seed:07d}.ok.npz"))


@pytest.mark.render
def test_step_observations_line_up_with_the_actions(mw_dataset):
    frames = LeRobotFrames(mw_dataset)
    ds = Windows(frames, horizon=6, n_obs=2, frame_stride=3, step_obs=True)
    assert "step_rgb" not in Windows(frames, horizon=6)[0]
    raw = _raw(mw_dataset, "drawer-close-v3")
    n, start = len(raw["action"]), int(np.flatnonzero(frames.task == 1)[0])
    for k in (0, 7, n - 3):                                # middle and padding past the episode end
        item = ds[start + k]
        steps = np.minimum(np.arange(k, k + 6), n - 1)      # the frame and state before action k + j
        assert item["step_rgb"].shape == (6, 2, 3, 32, 32) and item["step_rgb"].dtype == torch.uint8
        np.testing.assert_array_equal(item["step_rgb"].numpy(), raw["rgb"][steps])
        np.testing.assert_array_equal(item["step_state"].numpy(), raw["state"][steps])
        np.testing.assert_array_equal(item["step_rgb"][0].numpy(), item["rgb"][1].numpy())  # step 0 is now


def test_synthetic_step_observations_start_at_the_current_frame():
    dm = SyntheticDataModule(horizon=8, n_obs=2, n_future=2, num_views=2, step_obs=True)
    item = dm.dataset()[3]
    assert item["step_rgb"].shape == (8, 2, 3, 32, 32) and item["step_state"].shape == (8, 4)
    assert torch.equal(item["step_rgb"][0], item["rgb"][1]) and torch.equal(item["step_state"][0], item["state"])
    moved = item["step_state"][1:, :2] - item["step_state"][:-1, :2]
    torch.testing.assert_close(moved, item["action"][:-1, :2] * 2 / 8)  # the square follows the actions
    assert "step_rgb" not in SyntheticDataModule().dataset()[0]
