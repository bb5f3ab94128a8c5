"""Meta-World windows for X-WAM: the benchmark's windows plus the state at every future frame.

X-WAM denoises proprioception at each frame of the window (``s_0`` clean, then one per future
frame, sharing the action timestep). The benchmark's :class:`~wamzoo.data.dataset.Windows` give the
state at the current step only, so this module adds ``future_state`` ``[n_future, S]`` (robot units,
the episode's last state repeated past its end, like the frames) to every sample; the collated
batch carries it in ``batch.future_state``. Everything else (generation, statistics,
depth, cameras) is the ``metaworld`` data module's.
"""

from __future__ import annotations

import torch

from wamzoo.data.dataset import MetaWorldDataModule, Windows


class FutureStateWindows(Windows):
    """:class:`Windows` with ``future_state`` (see module doc)."""

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        frames, _, _, _ = self.window(int(self.samples[i]))
        item["future_state"] = torch.from_numpy(self.frames.state[frames[self.n_obs:]]).float()
        return item


class XWAMMetaWorldDataModule(MetaWorldDataModule):
    """The ``metaworld`` data module (same arguments) whose windows carry future states."""

    windows_class = FutureStateWindows
