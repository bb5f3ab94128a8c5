"""A learnable synthetic dataset with the shapes of a real one (for tests and smoke runs).

Each sample draws a state ``s``; the frames show a bright square at a position given by the first
two state dimensions, moving along the action; the action chunk is a smooth, task-dependent
function of the state. A policy can fit it, so "the loss decreases" is a real check.

With ``step_obs`` every window also carries what the robot observes before each action of the chunk
(``step_rgb`` ``[K, V, 3, H, W]`` and ``step_state`` ``[K, S]``): the square and
the position state dimensions advance by the action's first two dimensions, scaled so that the
chunk moves the square as far as the future frames do.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from wamzoo.batch import Batch
from wamzoo.normalize import compute_stats
from wamzoo.data.info import DataInfo


class SyntheticWindows(Dataset):
    def __init__(self, size: int, action_dim: int, state_dim: int, num_views: int, height: int, width: int,
                 horizon: int, n_obs: int, n_future: int, num_tasks: int, seed: int = 0, step_obs: bool = False):
        self.size, self.seed = size, seed
        self.a, self.s, self.v, self.h, self.w = action_dim, state_dim, num_views, height, width
        self.k, self.n_obs, self.n_future, self.num_tasks = horizon, n_obs, n_future, num_tasks
        self.step_obs = step_obs

    def draw(self, pos: torch.Tensor, task: int) -> torch.Tensor:
        """One frame ``[V, 3, H, W]``: the square at ``pos`` (in [-1, 1]^2) and the task's stripe."""
        rgb = torch.zeros(self.v, 3, self.h, self.w, dtype=torch.uint8)
        cy = int(((pos[0] + 1) / 2).clamp(0, 1) * (self.h - 5))
        cx = int(((pos[1] + 1) / 2).clamp(0, 1) * (self.w - 5))
        for v in range(self.v):
            rgb[v, v % 3, cy: cy + 5, cx: cx + 5] = 255
            rgb[v, 2, :, : 2 + 2 * task] = 128
        return rgb

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        task = int(torch.randint(self.num_tasks, (1,), generator=g))
        state = torch.rand(self.s, generator=g) * 2 - 1
        phase = torch.linspace(0, 1, self.k)[:, None]
        direction = torch.tensor([(-1) ** task, 0.5 * task - 0.5])
        action = torch.zeros(self.k, self.a)
        action[:, :2] = -0.5 * state[:2] * (1 - phase) + 0.3 * direction * phase
        if self.a > 2:
            action[:, 2:] = torch.tanh(state[2:self.a].sum()) * phase
        T = self.n_obs + self.n_future
        rgb = torch.zeros(T, self.v, 3, self.h, self.w, dtype=torch.uint8)
        pos = state[:2].clone()
        for t in range(T):
            if t >= self.n_obs:
                pos = pos + action[min((t - self.n_obs + 1) * self.k // max(self.n_future, 1), self.k) - 1, :2]
            rgb[t] = self.draw(pos, task)
        item = {"rgb": rgb, "n_obs": self.n_obs, "state": state, "action": action,
                "action_pad": torch.zeros(self.k, dtype=torch.bool), "task_id": task}
        if self.step_obs:
            moved = torch.cat([torch.zeros(1, 2), action[:-1, :2].cumsum(0)]) * max(self.n_future, 1) / self.k
            steps = state.repeat(self.k, 1)
            steps[:, :2] = state[:2] + moved
            item["step_state"] = steps
            item["step_rgb"] = torch.stack([self.draw(p, task) for p in steps[:, :2]])
        return item


class SyntheticDataModule(L.LightningDataModule):
    """Synthetic windows shaped like a real dataset (see module doc).

    Args:
        size: samples per epoch.
        action_dim, state_dim, num_views, height, width: shapes.
        horizon: action chunk length; n_obs / n_future: observed and future frames.
        frame_stride: environment steps the frames stand for (recorded; the frames are random).
        num_tasks: number of tasks.
        step_obs: also return the observation before every action of the chunk (see module doc).
        batch_size, num_workers: filled from the recipe's trainer.
    """

    def __init__(self, size: int = 256, action_dim: int = 4, state_dim: int = 4, num_views: int = 1,
                 height: int = 32, width: int = 32, horizon: int = 8, n_obs: int = 1, n_future: int = 1,
                 frame_stride: int = 1, num_tasks: int = 2, step_obs: bool = False, batch_size: int = 8, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.kw = dict(size=size, action_dim=action_dim, state_dim=state_dim, num_views=num_views, height=height,
                       width=width, horizon=horizon, n_obs=n_obs, n_future=n_future, num_tasks=num_tasks, seed=seed,
                       step_obs=step_obs)
        self.frame_stride, self.batch_size, self.num_workers = frame_stride, batch_size, num_workers

    def dataset(self) -> SyntheticWindows:
        return SyntheticWindows(**self.kw)

    def describe(self) -> DataInfo:
        k = self.kw
        return DataInfo(action_dim=k["action_dim"], state_dim=k["state_dim"], num_views=k["num_views"],
                        height=k["height"], width=k["width"], tasks=[f"task-{i}" for i in range(k["num_tasks"])],
                        horizon=k["horizon"], n_obs=k["n_obs"], n_future=k["n_future"], frame_stride=self.frame_stride)

    def info(self) -> DataInfo:
        ds = self.dataset()
        items = [ds[i] for i in range(min(len(ds), 256))]
        info = self.describe()
        info.stats = {"action": compute_stats(torch.cat([it["action"] for it in items])),
                      "state": compute_stats(torch.stack([it["state"] for it in items]))}
        return info

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset(), batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          collate_fn=Batch.collate, drop_last=True, persistent_workers=self.num_workers > 0)
