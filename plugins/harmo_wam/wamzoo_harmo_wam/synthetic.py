"""Synthetic grasping episodes with a gripper trace (tests and smoke runs of HarmoWAM's gate).

A hand (red square) moves to an object (green), closes its gripper, carries the object to a goal
(blue) and opens it: two gripper changes per episode, so the gate's labels
(:func:`~wamzoo_harmo_wam.gate.contact_labels` over the episode's grab effort, action dim 3) hold
both classes. Windows are cut from whole episodes like a real dataset: frames ``t, t + stride,
...``, the action chunk from ``t`` (padded past the end) and ``extras["contact"]`` at ``t``.
State: hand ``x, y``, gripper opening, holding flag; action: ``dx, dy``, 0, grab effort (±1).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from wamzoo.batch import Batch
from wamzoo.normalize import compute_stats
from wamzoo.data.info import DataInfo

from wamzoo_harmo_wam.gate import contact_labels


def episode(seed: int, length: int = 40) -> dict[str, np.ndarray]:
    """One scripted grasp-and-place episode: ``state`` ``[T, 4]``, ``action`` ``[T, 4]``, positions.

    Phases: reach the object (gripper open), close, carry it to the goal (closed), open, rest.
    """
    rng = np.random.default_rng(seed)
    hand, obj, goal = (rng.uniform(-0.8, 0.8, 2) for _ in range(3))
    grip, phase = 1.0, "reach"
    states, actions, objs = [], [], []
    for _ in range(length):
        if phase == "reach" and np.linalg.norm(obj - hand) < 0.05:
            phase = "close"
        elif phase == "close" and grip < 0.05:
            phase = "carry"
        elif phase == "carry" and np.linalg.norm(goal - hand) < 0.05:
            phase = "open"
        elif phase == "open" and grip > 0.95:
            phase = "rest"
        target = {"reach": obj, "carry": goal}.get(phase, hand)
        effort = 1.0 if phase in ("close", "carry") else -1.0
        states.append([*hand, grip, float(phase == "carry")])
        objs.append(obj.copy())
        move = np.clip(target - hand, -0.15, 0.15)
        actions.append([*move, 0.0, effort])
        hand = hand + move
        grip = float(np.clip(grip - 0.35 * effort, 0.0, 1.0))
        if phase == "carry":
            obj = hand.copy()
    return {"state": np.asarray(states, np.float32), "action": np.asarray(actions, np.float32),
            "object": np.asarray(objs, np.float32), "goal": goal.astype(np.float32)}


def render(state: np.ndarray, obj: np.ndarray, goal: np.ndarray, size: int) -> np.ndarray:
    """``[3, size, size]`` uint8 frame of one step."""
    img = np.zeros((3, size, size), np.uint8)

    def square(pos, channel, value, r):
        c = ((np.clip(pos, -1, 1) + 1) / 2 * (size - 1)).astype(int)
        img[channel, max(0, c[0] - r): c[0] + r + 1, max(0, c[1] - r): c[1] + r + 1] = value

    square(goal, 2, 160, 2)
    square(obj, 1, 255, 1)
    square(state[:2], 0, 255 if state[2] > 0.5 else 120, 2)
    return img


class GraspWindows(Dataset):
    def __init__(self, episodes: int, length: int, size: int, horizon: int, n_obs: int, n_future: int,
                 frame_stride: int, k: int, seed: int):
        self.eps = [episode(seed * 100_003 + e, length) for e in range(episodes)]
        self.labels = [contact_labels(ep["action"][:, 3], k) for ep in self.eps]
        self.length, self.size, self.horizon = length, size, horizon
        self.n_obs, self.n_future, self.stride = n_obs, n_future, frame_stride

    def __len__(self) -> int:
        return len(self.eps) * self.length

    def __getitem__(self, i: int) -> dict:
        ep, t = self.eps[i // self.length], i % self.length
        steps = [t + (j - self.n_obs + 1) * self.stride for j in range(self.n_obs + self.n_future)]
        frames = [render(ep["state"][min(max(s, 0), self.length - 1)], ep["object"][min(max(s, 0), self.length - 1)],
                         ep["goal"], self.size) for s in steps]
        idx = np.arange(t, t + self.horizon)
        return {"rgb": torch.from_numpy(np.stack(frames)[:, None]), "n_obs": self.n_obs,
                "state": torch.from_numpy(ep["state"][t]),
                "action": torch.from_numpy(ep["action"][np.minimum(idx, self.length - 1)]),
                "action_pad": torch.from_numpy(idx >= self.length),
                "frame_pad": torch.tensor([s < 0 or s >= self.length for s in steps]),
                "task_id": 0, "contact": torch.tensor(float(self.labels[i // self.length][t]))}


class GraspDataModule(L.LightningDataModule):
    """Synthetic grasp-and-place windows with gate labels in ``extras["contact"]`` (see module doc).

    Args:
        episodes, length: number and length of the episodes.
        size: square frame size; horizon: action chunk; n_obs / n_future / frame_stride: frames.
        k: gate label half-width in steps.
        batch_size, num_workers, seed: filled from the recipe's trainer.
    """

    def __init__(self, episodes: int = 32, length: int = 40, size: int = 32, horizon: int = 8, n_obs: int = 1,
                 n_future: int = 1, frame_stride: int = 4, k: int = 4, batch_size: int = 8, num_workers: int = 0,
                 seed: int = 0):
        super().__init__()
        self.kw = dict(episodes=episodes, length=length, size=size, horizon=horizon, n_obs=n_obs, n_future=n_future,
                       frame_stride=frame_stride, k=k, seed=seed)
        self.batch_size, self.num_workers = batch_size, num_workers

    def dataset(self) -> GraspWindows:
        return GraspWindows(**self.kw)

    def describe(self) -> DataInfo:
        k = self.kw
        return DataInfo(action_dim=4, state_dim=4, num_views=1, height=k["size"], width=k["size"], tasks=["grasp"],
                        horizon=k["horizon"], n_obs=k["n_obs"], n_future=k["n_future"], frame_stride=k["frame_stride"])

    def info(self) -> DataInfo:
        ds = self.dataset()
        info = self.describe()
        info.stats = {"action": compute_stats(torch.from_numpy(np.concatenate([e["action"] for e in ds.eps]))),
                      "state": compute_stats(torch.from_numpy(np.concatenate([e["state"] for e in ds.eps])))}
        return info

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset(), batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          collate_fn=Batch.collate, drop_last=True, persistent_workers=self.num_workers > 0)
