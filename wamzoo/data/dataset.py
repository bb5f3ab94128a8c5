"""Training windows over demonstration datasets, and the ``metaworld`` data module.

A window is centred on a *current step* ``t`` of an episode (every frame is one), with ``s`` =
``frame_stride``, ``K`` = ``horizon``:

- frames ``t - (n_obs - 1) s, ..., t - s, t`` (observed history, ending at the current step) then
  ``t + s, ..., t + n_future s`` (future): ``rgb [n_obs + n_future, V, 3, H, W]``;
- ``action [K, A]``: actions ``t, ..., t + K - 1`` (action ``t`` is taken after seeing frame ``t``);
- ``state``, ``intrinsics``, ``extrinsics`` at ``t``; ``task_id`` the episode's task;
- per-step ``extras`` at ``t`` (``batch.extras[name]``), computed once per episode from its actions
  and states by a function the recipe names (:func:`step_extras`; e.g. HarmoWAM's gate labels);
- with ``step_obs``, what is observed before each action of the chunk: ``step_rgb [K, V, 3, H, W]``
  (frames ``t, ..., t + K - 1``) and ``step_state [K, S]`` (e.g. AHA-WAM's chunk-start observations
  at any phase offset);
- with ``shift``, every view of the window moved by a random offset of up to ``shift`` pixels
  (:mod:`wamzoo.data.augment`).

Sampling (``balance``): every frame of the dataset is drawn equally often (``"frames"``, the default), or
every task is (``"tasks"``: a window is drawn with weight one over its task's frame count), so that a task
whose demonstrations are short (Meta-World's reach: 48 steps against window-open's 87) is not trained on
less than the others in a multi-task model.

Indices outside the episode repeat its first (history) or last (future, actions) element and are
flagged in ``frame_pad`` / ``action_pad``, except with ``action_tail="repeat"``: the chunk's steps past
the episode's end are the last action repeated and trained on like the others (Diffusion Policy's
sequence sampler, Chi et al. 2023), so that a chunk predicted near the end of a task says what to do
there rather than whatever an untrained tail holds. The data module generates the dataset when ``root`` is
missing and ``episodes`` is set, so ``wamzoo train recipe.yaml`` works on a fresh machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from wamzoo.batch import Batch
from wamzoo.data.augment import shift_intrinsics, shift_offsets, shift_views
from wamzoo.data.generate import EXPERT_DEFAULTS, generate, stale_actions
from wamzoo.data.info import DataInfo
from wamzoo.data.lerobot import LeRobotFrames, read_info, read_tasks
from wamzoo.errors import WamzooError
from wamzoo.normalize import STATS, compute_stats

STATS_KEYS = {"action": "action", "state": "observation.state"}
#: What a chunk holds past its episode's end (module doc): masked out of the loss, or the last action trained on.
ACTION_TAILS = ("mask", "repeat")
#: How training draws windows (module doc): every frame equally often, or every task.
BALANCES = ("frames", "tasks")


class Windows(Dataset):
    """Windows of one :class:`LeRobotFrames` (see module doc); ``tasks`` selects and orders task ids."""

    def __init__(self, frames: LeRobotFrames, horizon: int, n_obs: int = 1, n_future: int = 0,
                 frame_stride: int = 1, tasks: Sequence[str] | None = None,
                 extras: Mapping[str, Any] | None = None, step_obs: bool = False, shift: int = 0,
                 action_tail: str = "mask"):
        if horizon < 1 or n_obs < 1 or n_future < 0 or frame_stride < 1 or shift < 0:
            raise WamzooError(f"need horizon >= 1, n_obs >= 1, n_future >= 0, frame_stride >= 1, shift >= 0; got"
                              f" {horizon}, {n_obs}, {n_future}, {frame_stride}, {shift}")
        if action_tail not in ACTION_TAILS:
            raise WamzooError(f"action_tail must be one of {', '.join(ACTION_TAILS)}, got {action_tail!r}")
        self.frames, self.horizon, self.n_obs, self.n_future = frames, horizon, n_obs, n_future
        self.stride = frame_stride
        self.tasks = list(tasks) if tasks else list(frames.tasks)
        remap = np.array([self.tasks.index(t) if t in self.tasks else -1 for t in frames.tasks])
        self.task_id = remap[frames.task]
        self.samples = np.flatnonzero(self.task_id >= 0)
        self.extras = step_extras(frames, extras or {})
        self.step_obs, self.shift, self.action_tail = step_obs, shift, action_tail

    def __len__(self) -> int:
        return len(self.samples)

    def task_weights(self) -> np.ndarray:
        """Per-window sampling weights under which every task is drawn equally often (``balance="tasks"``)."""
        tasks = self.task_id[self.samples]
        return 1.0 / np.bincount(tasks)[tasks]

    def window(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Global frame indices of the window at ``t`` and their pads: frames, frame_pad, actions, action_pad."""
        f = self.frames
        first, last = f.start[t], f.end[t] - 1
        offsets = np.arange(-(self.n_obs - 1), self.n_future + 1) * self.stride
        frames = t + offsets
        actions = t + np.arange(self.horizon)
        frame_pad, action_pad = (frames < first) | (frames > last), actions > last
        if self.action_tail == "repeat":
            action_pad = np.zeros_like(action_pad)
        return np.clip(frames, first, last), frame_pad, np.minimum(actions, last), action_pad

    def __getitem__(self, i: int) -> dict:
        f = self.frames
        t = int(self.samples[i])
        frames, frame_pad, actions, action_pad = self.window(t)
        rgb = np.stack([f.images(c)[frames] for c in f.cameras], axis=1)
        item = {"rgb": torch.from_numpy(rgb), "n_obs": self.n_obs, "state": torch.from_numpy(f.state[t]),
                "action": torch.from_numpy(f.action[actions]), "action_pad": torch.from_numpy(action_pad),
                "frame_pad": torch.from_numpy(frame_pad), "task_id": int(self.task_id[t])}
        if f.with_depth:
            depth = np.stack([f.depth(c)[frames] for c in f.cameras], axis=1)
            item["depth"] = torch.from_numpy(depth.astype(np.float32))
        if f.intrinsics is not None:
            item["intrinsics"] = torch.from_numpy(f.intrinsics)
        if f.extrinsics is not None:
            item["extrinsics"] = torch.from_numpy(f.extrinsics[t])
        for name, values in self.extras.items():
            item[name] = torch.from_numpy(np.asarray(values[t]))
        if self.step_obs:
            item["step_rgb"] = torch.from_numpy(np.stack([f.images(c)[actions] for c in f.cameras], axis=1))
            item["step_state"] = torch.from_numpy(f.state[actions])
        if self.shift:
            offsets = shift_offsets(len(f.cameras), self.shift)
            for key in ("rgb", "depth", "step_rgb"):
                if key in item:
                    item[key] = torch.from_numpy(shift_views(item[key].numpy(), offsets))
            if "intrinsics" in item:
                item["intrinsics"] = torch.from_numpy(shift_intrinsics(item["intrinsics"].numpy(), offsets))
        return item


def step_extras(frames: LeRobotFrames, specs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per-frame values ``{name: [N, ...]}`` computed episode by episode.

    ``specs[name]`` is ``"module:function"`` or ``{"fn": "module:function", **kwargs}``; the function
    is called as ``fn({"action": [T, A], "state": [T, S]}, **kwargs)`` for every episode and returns
    one value per step, ``[T, ...]``.
    """
    import importlib

    out = {}
    firsts = np.flatnonzero(np.r_[True, frames.start[1:] != frames.start[:-1]]) if len(frames.start) else []
    for name, spec in specs.items():
        spec = {"fn": spec} if isinstance(spec, str) else dict(spec)
        target = str(spec.pop("fn", ""))
        module, _, attr = target.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise WamzooError(f"data.extras.{name}: cannot import {target!r} (want 'module:function'):"
                              f" {exc}") from None
        values = []
        for first in firsts:
            lo, hi = int(frames.start[first]), int(frames.end[first])
            v = np.asarray(fn({"action": frames.action[lo:hi], "state": frames.state[lo:hi]}, **spec))
            if len(v) != hi - lo:
                raise WamzooError(f"data.extras.{name}: {target} returned {len(v)} values for an episode of"
                                  f" {hi - lo} steps")
            values.append(v)
        out[name] = np.concatenate(values)
    return out


class MetaWorldDataModule(L.LightningDataModule):
    """Windows of a Meta-World demonstration dataset (any LeRobot v3 folder reads the same way).

    Args:
        root: dataset folder (``wamzoo data metaworld --out ROOT``).
        suite, tasks: the tasks to train on (default: all of the dataset); also what is generated.
        horizon: action chunk length K; n_obs / n_future: observed and future frames;
            frame_stride: env steps between frames (history and future).
        cameras: subset of the dataset's cameras (default: all); depth: add metric depth.
        episodes: demonstrations per task to generate when ``root`` has no dataset (``None``: fail).
        size: image size of generated data; generate_workers: generation processes.
        noise: DART's perturbation of the expert in generated data (:mod:`wamzoo.data.generate`); settle: steps
            its episodes go on past the first success; aim: where its reach experts point the hand. A dataset
            already in ``root`` must have been made with the same three.
        extras: per-step values added to every window, ``{name: "module:function"}`` or
            ``{name: {fn: "module:function", **kwargs}}`` (see :func:`step_extras`).
        step_obs: add the frames and states observed before every action of the chunk (module doc).
        shift: random-shift augmentation of up to this many pixels per view (0: none; module doc).
        action_tail: ``"mask"`` or ``"repeat"``: the chunk's steps past the episode's end (module doc).
        balance: ``"frames"`` or ``"tasks"``: what training draws equally often (module doc).
        batch_size, num_workers, seed: loader settings (filled from the recipe's trainer).
    """

    #: The windows this module serves (a subclass adds fields to each, e.g. X-WAM's future states).
    windows_class: type[Windows] = Windows

    def __init__(self, root: str, suite: str | None = None, tasks: list[str] | None = None, horizon: int = 16,
                 n_obs: int = 1, n_future: int = 0, frame_stride: int = 1, cameras: list[str] | None = None,
                 depth: bool = False, episodes: int | None = None, size: int = 64, generate_workers: int = 2, noise: float = 0.0,
                 settle: int = 0, aim: str = "wrist",
                 extras: dict[str, Any] | None = None, step_obs: bool = False, shift: int = 0,
                 action_tail: str = "mask", balance: str = "frames", batch_size: int = 32, num_workers: int = 2,
                 seed: int = 0):
        super().__init__()
        if balance not in BALANCES:
            raise WamzooError(f"data.balance must be one of {', '.join(BALANCES)}, got {balance!r}")
        self.root, self.suite, self.task_names = Path(root), suite, tasks
        self.window_args = dict(horizon=horizon, n_obs=n_obs, n_future=n_future, frame_stride=frame_stride)
        self.cameras, self.depth, self.episodes, self.size = cameras, depth, episodes, size
        self.generate_workers, self.batch_size, self.num_workers = generate_workers, batch_size, num_workers
        self.made_with = {"noise": noise, "settle": settle, "aim": aim}
        self.seed = seed
        self._windows: Windows | None = None
        self.extras = dict(extras or {})
        self.step_obs, self.shift, self.action_tail, self.balance = step_obs, shift, action_tail, balance

    def _selected_tasks(self, available: Sequence[str] | None = None) -> list[str] | None:
        if self.suite is None and not self.task_names:
            return None if available is None else list(available)
        from wamzoo.envs.metaworld import suite_tasks

        tasks = suite_tasks(self.suite, self.task_names)
        missing = [t for t in tasks if available is not None and t not in available]
        if missing:
            raise WamzooError(f"{self.root} has no demonstrations of {missing} (it has {list(available)});"
                              " generate them or change data.suite / data.tasks")
        return tasks

    def prepare_data(self) -> None:
        """Generate the dataset if ``root`` has none and ``episodes`` is set."""
        if stale := stale_actions(self.root):
            raise WamzooError(stale)
        made = self.root / "raw" / "settings.json"
        settings = json.loads(made.read_text()) if made.is_file() else {}
        for key, want in self.made_with.items():
            had = settings.get(key, EXPERT_DEFAULTS[key])
            if made.is_file() and had != want:
                raise WamzooError(f"{self.root} was generated with {key} {had}, the recipe asks for"
                                  f" data.{key}={want}: point data.root at another folder")
        if (self.root / "meta" / "info.json").is_file():
            return
        tasks = self._selected_tasks()
        if self.episodes is None or tasks is None:
            read_info(self.root)  # raises, naming the command that makes the dataset
        generate(self.root, tasks, self.episodes, cameras=self.cameras, size=self.size,
                 workers=self.generate_workers, **self.made_with)

    def windows(self) -> Windows:
        if self._windows is None:
            self.prepare_data()
            frames = LeRobotFrames(self.root, self.cameras, self.depth)
            self._windows = self.windows_class(frames, tasks=self._selected_tasks(frames.tasks),
                                               extras=self.extras, step_obs=self.step_obs, shift=self.shift,
                                               action_tail=self.action_tail, **self.window_args)
        return self._windows

    def describe(self) -> DataInfo:
        if (self.root / "meta" / "info.json").is_file():
            meta = read_info(self.root)
            ext = meta.get("wamzoo", {})
            feats = meta["features"]
            cameras = self.cameras or [k.split(".", 2)[2] for k in feats if k.startswith("observation.images.")]
            shape = feats[f"observation.images.{cameras[0]}"]["shape"]
            height, width = (shape[1], shape[2]) if shape[0] in (1, 3) else (shape[0], shape[1])
            tasks = self._selected_tasks(ext.get("tasks") or read_tasks(self.root))
            dims = feats["action"]["shape"][0], feats["observation.state"]["shape"][0]
            fps, seeds, lerobot_env = float(meta.get("fps", 0.0)), ext.get("seed_range"), bool(ext.get("lerobot_env"))
        else:
            from wamzoo.envs.metaworld import ACTION_DIM, DEFAULT_CAMERAS, FPS, STATE_DIM

            cameras, height, width = list(self.cameras or DEFAULT_CAMERAS), self.size, self.size
            tasks, dims, fps, seeds, lerobot_env = self._selected_tasks(), (ACTION_DIM, STATE_DIM), FPS, None, False
            if tasks is None:
                read_info(self.root)
        return DataInfo(action_dim=dims[0], state_dim=dims[1], num_views=len(cameras), height=height, width=width,
                        tasks=tasks, fps=fps, cameras=list(cameras), seed_range=seeds, lerobot_env=lerobot_env,
                        **self.window_args)

    def info(self) -> DataInfo:
        """:meth:`describe` plus normalisation statistics (``meta/stats.json``, computed if incomplete)."""
        import json

        frames = self.windows().frames
        info = self.describe()
        path = self.root / "meta" / "stats.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        info.stats = {}
        for key, feature in STATS_KEYS.items():
            s = saved.get(feature, {})
            column = frames.action if key == "action" else frames.state
            info.stats[key] = ({k: [float(x) for x in np.ravel(s[k])] for k in STATS} if all(k in s for k in STATS)
                               else compute_stats(torch.from_numpy(column)))
        return info

    def train_dataloader(self) -> DataLoader:
        windows, generator = self.windows(), torch.Generator().manual_seed(self.seed)
        order: dict[str, Any] = dict(shuffle=True, generator=generator)
        if self.balance == "tasks":
            order = dict(sampler=WeightedRandomSampler(torch.from_numpy(windows.task_weights()), len(windows),
                                                       generator=generator))
        return DataLoader(windows, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=Batch.collate,
                          drop_last=True, persistent_workers=self.num_workers > 0, **order)

