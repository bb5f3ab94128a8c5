"""Meta-World windows with future states line up with the dataset's per-frame states."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from wamzoo.data.generate import generate

    return generate(tmp_path_factory.mktemp("xwam-mw") / "ds", ["reach-v3"], episodes=1, workers=0, size=32,
                    progress=False)


def test_future_states_follow_the_future_frames(tiny_dataset):
    from wamzoo_x_wam.data import XWAMMetaWorldDataModule

    dm = XWAMMetaWorldDataModule(root=str(tiny_dataset), horizon=8, n_obs=1, n_future=2, frame_stride=4, depth=True,
                                 batch_size=2, num_workers=0)
    ds = dm.windows()
    f = ds.frames
    for i in (0, len(ds) // 2, len(ds) - 1):  # start, middle, and past the episode's end (clipped)
        item = ds[i]
        t = int(ds.samples[i])
        last = int(f.end[t]) - 1
        want = np.stack([f.state[min(t + 4 * k, last)] for k in (1, 2)])
        assert torch.equal(item["future_state"], torch.from_numpy(want).float())
        assert torch.equal(item["state"], torch.from_numpy(f.state[t]))
        assert item["depth"].shape[:2] == (3, 2)
    batch = next(iter(dm.train_dataloader()))
    assert batch.future_state.shape == (2, 2, 4)


def test_the_windows_keep_every_setting_of_the_data_module(tiny_dataset):
    """The future-state windows are built with the module's own settings (augmentation, action tail), not
    just its window shape."""
    from wamzoo_x_wam.data import XWAMMetaWorldDataModule

    dm = XWAMMetaWorldDataModule(root=str(tiny_dataset), horizon=8, n_future=1, frame_stride=4, shift=2,
                                 action_tail="repeat", num_workers=0)
    ds = dm.windows()
    assert (ds.shift, ds.action_tail) == (2, "repeat")
    assert not ds[len(ds) - 1]["action_pad"].any()
