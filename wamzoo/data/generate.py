"""Scripted-expert demonstrations on Meta-World, written as a LeRobot v3 dataset with array sidecars.

    wamzoo data metaworld --suite mw-easy --episodes 20 --out data/mw-easy [--workers 2] [--size 64]
    wamzoo data metaworld --lerobot-env --tasks reach-v3 --episodes 20 --out data/mw-lerobot

``--lerobot-env`` writes a plain LeRobot v3 dataset whose camera and state are those of LeRobot's
Meta-World env (``lerobot-eval --env.type=metaworld``): the ``corner2`` camera posed, rendered (Meta-World's
own renderer, 480x480, 2 cm goal marker) and flipped as that env does, resized to ``--size`` by
:func:`wamzoo.images.resize_frames` (the LeRobot plugin resizes the env's frames the same way), stored as PNG ``image``
features in the parquet files, no depth or extrinsics; the state is the same hand xyz + gripper. Both
LeRobot's ``LeRobotDataset`` and wamzoo's trainer read it.

Each task gets ``episodes`` demonstrations by Meta-World's own scripted expert on the layouts of
seeds ``seed, seed + 1, ...`` (training seeds, see :mod:`wamzoo.envs.metaworld`); an episode ends at
the environment's first ``success`` (or at ``max_steps``), or ``settle`` steps after it: the expert keeps acting,
so the demonstrations show the approach carried on to the goal's centre and held there instead of stopping on the
success threshold's edge (reach succeeds within 5 cm; an expert stopped there teaches a policy that lands a few
centimetres short to stop). With ``aim="fingertips"`` the reach experts put the fingertips on the goal instead
of the wrist (:func:`wamzoo.envs.metaworld.expert`). The action recorded is the one the environment
executes: Meta-World's experts are proportional controllers whose raw outputs reach +-12 while ``step`` clips
to the action space [-1, 1]; recording them raw stretched the normalised range twelvefold, so a reach towards a
goal 10 cm to the left (-0.5) was 4% of it and the policies learned to ignore the goal. With ``noise`` > 0 the expert is driven off its path
as in DART (Laskey et al. 2017, "DART: Noise Injection for Robust Imitation Learning", Sec. 4): the action
executed is the expert's plus Gaussian noise of that standard deviation (clipped to the action space, drawn from
the episode's seed), the action recorded is the expert's own (clipped), so the demonstrations show how to come back to
the path from the states a learned policy drifts into. Only successful episodes are kept
unless ``keep_failures``; the dataset is the first ``episodes`` kept seeds of each task, so it does
not depend on the number of workers.

Layout of ``DIR`` (LeRobot v3 for everything per frame and low-dimensional; frames as arrays)::

    meta/info.json        codebase_version v3.0, fps, features, totals; "wamzoo": tasks, cameras,
                          intrinsics per camera, seed_range [first, last + 1), generator settings
    meta/stats.json       action, observation.state: min/max/mean/std/q01/q99/count
    meta/tasks.parquet    task_index, task (the Meta-World task name)
    meta/episodes/chunk-000/file-000.parquet
                          episode_index, tasks, length, dataset_from_index, dataset_to_index,
                          data/chunk_index, data/file_index, seed, success
    data/chunk-000/file-000.parquet
                          index, episode_index, frame_index, timestamp, task_index,
                          observation.state [4], action [4], next.reward, next.success, next.done,
                          observation.extrinsics.<cam> [4, 4] (camera-to-world, OpenCV axes)
    arrays/observation.images.<cam>.npy   [N, 3, H, W] uint8, row i = frame ``index`` i
    arrays/observation.depth.<cam>.npy    [N, 1, H, W] float16, metres
    raw/<task>/<seed>.{ok,fail}.npz       finished episodes (compressed), the resume state
    raw/settings.json, raw/generate.lock  cameras/size/noise the episodes were made with; one generator at a time

Frames are uncompressed ``.npy`` so that training memory-maps them (shared by DataLoader workers
through the page cache, no decoding). Row ``t`` holds the observation before action ``t``;
``next.*`` describe the step that action caused. Generation runs in worker processes, each
episode is written to ``raw/`` by an atomic rename, so a killed run resumes where it stopped and
never keeps a partial episode; ``meta/info.json`` is written last. Ctrl-C stops after the episodes
being recorded (workers ignore it) and says how many are kept; a truncated episode file is named,
and deleting it makes the rerun record that episode again.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import zipfile
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np

from wamzoo.errors import DataError, Interrupted, WamzooError

CODEBASE_VERSION = "v3.0"
#: What ``action`` records (``raw/settings.json``): the action executed, in the action space (module doc).
ACTIONS = "executed"
#: How the expert's episodes are made by default; ``raw/settings.json`` records the settings that differ.
EXPERT_DEFAULTS = {"noise": 0.0, "settle": 0, "aim": "wrist"}
DATA_FILE = "data/chunk-000/file-000.parquet"
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def depth_key(camera: str) -> str:
    return f"observation.depth.{camera}"


def extrinsics_key(camera: str) -> str:
    return f"observation.extrinsics.{camera}"


# -- one episode (runs in a worker) ------------------------------------------------------------
_ENV: dict = {}


def _env(task: str, cameras: tuple[str, ...], size: int, max_steps: int, lerobot_env: bool = False):
    from wamzoo.envs.metaworld import MetaWorldEnv

    key = (task, cameras, size, max_steps, lerobot_env)
    if _ENV.get("key") != key:
        if "env" in _ENV:
            _ENV["env"].close()
        if lerobot_env:
            env = MetaWorldEnv.like_lerobot(task, size, split="train", max_steps=max_steps)
        else:
            env = MetaWorldEnv(task, cameras, size, size, depth=True, split="train", max_steps=max_steps)
        _ENV.update(key=key, env=env)
    return _ENV["env"]


def record_episode(env, seed: int, noise: float = 0.0, settle: int = 0, aim: str = "wrist") -> dict[str, np.ndarray]:
    """Run the scripted expert aimed as ``aim`` on ``seed``'s layout, its actions perturbed by ``noise`` (DART,
    module doc), until ``settle`` steps after its first success; arrays of the whole episode, with the expert's
    unperturbed actions."""
    from wamzoo.envs.metaworld import expert

    act, rng = expert(env.task, aim), np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    seen = [k for k in ("rgb", "depth", "state", "extrinsics") if k in obs]  # LeRobot's view has no depth
    rows: dict[str, list] = {k: [] for k in (*seen, "action", "reward", "success")}
    layout, left = info["layout"], None  # steps left once the task succeeded
    while left != 0:
        action = act(info["privileged"])
        for k in seen:
            rows[k].append(obs[k].astype(np.float16) if k == "depth" else obs[k])
        rows["action"].append(action)
        if noise:
            action = np.clip(action + rng.normal(0.0, noise, action.shape), -1.0, 1.0).astype(action.dtype)
        obs, reward, _, truncated, info = env.step(action)
        rows["reward"].append(reward)
        rows["success"].append(info["success"])
        if truncated:
            break
        if left is None and info["success"]:
            left = settle
        elif left:
            left -= 1
    out = {k: np.stack(v) for k, v in rows.items()}
    out.update(intrinsics=obs["intrinsics"], layout=layout, seed=np.int64(seed), fps=np.float64(env.fps))
    return out


def _episode_job(out: str, task: str, seed: int, cameras: tuple[str, ...], size: int,
                 max_steps: int, lerobot_env: bool = False, noise: float = 0.0,
                 settle: int = 0, aim: str = "wrist") -> tuple[str, int, bool, int]:
    ep = record_episode(_env(task, cameras, size, max_steps, lerobot_env), seed, noise, settle, aim)
    success = bool(ep["success"].any())
    folder = Path(out) / "raw" / task
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{seed:07d}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **ep)
    os.replace(tmp, folder / f"{seed:07d}.{'ok' if success else 'fail'}.npz")
    return task, seed, success, len(ep["action"])


# -- scheduling --------------------------------------------------------------------------------
def read_episode(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of a finished episode file (``raw/<task>/<seed>.*.npz``)."""
    try:
        with np.load(path) as ep:
            return {k: ep[k] for k in keys}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is truncated or corrupt ({exc}); delete it and rerun the same command: it records"
                        " that episode again and keeps the others") from None


def _finished(out: Path, task: str) -> dict[int, bool]:
    """Seeds of ``task`` already finished in ``out/raw`` -> success; stale temporary files removed."""
    folder = out / "raw" / task
    done: dict[int, bool] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith("."):
                p.unlink()
            elif p.name.endswith(".npz"):
                seed, status, _ = p.name.split(".")
                done[int(seed)] = status == "ok"
    return done


def stale_actions(root: str | os.PathLike) -> str | None:
    """Why the dataset ``root`` made by this generator cannot be used as it is (``None``: it can): its episodes
    were recorded before the actions were the executed ones (module doc)."""
    cfg = Path(root) / "raw" / "settings.json"
    if not cfg.is_file() or json.loads(cfg.read_text()).get("actions") == ACTIONS:
        return None
    return (f"{root} was made by an older wamzoo that recorded Meta-World's unclipped expert actions (up to +-12;"
            " the environment executes them clipped to +-1), on which policies learn to ignore the goal; nothing"
            " was changed: make it again into another folder (`wamzoo data metaworld ... --out NEW`, or a recipe's"
            " data.root naming a new folder generates it) or move this one away")


def generate(out: str | os.PathLike, tasks: Sequence[str], episodes: int, seed: int = 0, workers: int = 2,
             keep_failures: bool = False, cameras: Sequence[str] | None = None, size: int = 64,
             max_steps: int = 500, progress: bool = True, lerobot_env: bool = False, noise: float = 0.0,
             settle: int = 0, aim: str = "wrist") -> Path:
    """Write (or resume, or extend) the demonstration dataset ``out``; returns its path. ``lerobot_env``: the
    camera and layout of LeRobot's Meta-World env; ``noise``: DART's perturbation of the expert; ``settle``: steps
    recorded past the first success; ``aim``: where the reach experts point the hand (module doc).

    >>> generate("data/mw-easy", SUITES["mw-easy"], episodes=20, workers=2)   # doctest: +SKIP
    """
    from wamzoo.envs.metaworld import AIMS, DEFAULT_CAMERAS, LEROBOT_CAMERA, check_seeds

    if lerobot_env and cameras and tuple(cameras) != (LEROBOT_CAMERA,):
        raise WamzooError(f"--lerobot-env records LeRobot's Meta-World camera {LEROBOT_CAMERA!r} only; drop --cameras")
    out, cameras = Path(out), tuple(cameras or ((LEROBOT_CAMERA,) if lerobot_env else DEFAULT_CAMERAS))
    if episodes < 1:
        raise WamzooError(f"--episodes must be >= 1, got {episodes}")
    if noise < 0:
        raise WamzooError(f"--noise is a standard deviation, >= 0; got {noise}")
    if settle < 0:
        raise WamzooError(f"--settle counts steps recorded after the first success, >= 0; got {settle}")
    if aim not in AIMS:
        raise WamzooError(f"--aim must be one of {', '.join(AIMS)}, got {aim!r}")
    max_tries = 3 * episodes + 10
    check_seeds(range(seed, seed + max_tries), "train")
    settings = {"cameras": list(cameras), "size": size, "max_steps": max_steps, "actions": ACTIONS}
    if lerobot_env:
        settings["lerobot_env"] = True
    settings.update({k: v for k, v in dict(noise=noise, settle=settle, aim=aim).items() if v != EXPERT_DEFAULTS[k]})
    (out / "raw").mkdir(parents=True, exist_ok=True)
    with open(out / "raw" / "generate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second generator into ``out`` waits, then finds the episodes made
        cfg = out / "raw" / "settings.json"
        if stale := stale_actions(out):
            raise WamzooError(stale)
        if cfg.is_file() and json.loads(cfg.read_text()) != settings:
            raise WamzooError(f"{out} holds episodes made with {json.loads(cfg.read_text())}, not {settings};"
                              " use another --out or the same --cameras/--size/--lerobot-env/--noise/--settle/--aim")
        cfg.write_text(json.dumps(settings))
        done = {t: _finished(out, t) for t in tasks}
        try:
            _run_jobs(out, done, list(tasks), episodes, seed, max_tries, workers, keep_failures,
                      (cameras, size, max_steps, lerobot_env, noise, settle, aim), progress)
        except KeyboardInterrupt:
            kept = sum(len(_finished(out, t)) for t in tasks)
            raise Interrupted(f"interrupted: {kept} finished episodes kept in {out / 'raw'}; rerun the same command"
                              " to resume") from None
        kept = {t: sorted(s for s, ok in done[t].items() if ok or keep_failures) for t in tasks}
        short = [t for t in tasks if len(kept[t]) < episodes]
        if short:
            raise WamzooError(f"the scripted expert succeeded too rarely on {short} within {max_tries} seeds;"
                              " pass --keep-failures or fewer --episodes")
        write_dataset(out, list(tasks), {t: kept[t][:episodes] for t in tasks}, cameras, lerobot_env)
    return out


def _run_jobs(out: Path, done: dict[str, dict[int, bool]], tasks: list[str], episodes: int, seed: int,
              max_tries: int, workers: int, keep_failures: bool, env_args: tuple, progress: bool) -> None:
    """Run episodes until each task has ``episodes`` kept ones, seeds in order; updates ``done``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    kept = lambda t: sum(ok or keep_failures for ok in done[t].values())  # noqa: E731
    next_seed = {t: seed for t in tasks}
    running: dict = {}
    frames, t0 = 0, time.perf_counter()

    def todo() -> list[tuple[str, int]]:
        jobs: list[tuple[str, int]] = []
        for t in tasks:
            busy = sum(1 for task, _ in list(running.values()) + jobs if task == t)
            while (kept(t) + busy < episodes and next_seed[t] < seed + max_tries
                   and len(running) + len(jobs) < max(2 * workers, 1)):
                s = next_seed[t]
                next_seed[t] += 1
                if s not in done[t]:
                    jobs.append((t, s))
                    busy += 1
        return jobs

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task("demonstrations", total=episodes * len(tasks), rate="",
                           completed=sum(min(kept(t), episodes) for t in tasks))

        def finish(task: str, s: int, success: bool, length: int) -> None:
            nonlocal frames
            before = min(kept(task), episodes)
            done[task][s] = success
            frames += length
            rate = frames / (time.perf_counter() - t0)
            bar.update(job, advance=min(kept(task), episodes) - before, rate=f"{rate:.0f} frames/s")

        if workers <= 0:
            while jobs := todo():
                for t, s in jobs:
                    finish(*_episode_job(str(out), t, s, *env_args))
            return
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=signal.signal,
                                 initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:  # Ctrl-C is the parent's
            try:
                while True:
                    for t, s in todo():
                        running[pool.submit(_episode_job, str(out), t, s, *env_args)] = (t, s)
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        running.pop(fut)
                        finish(*fut.result())
            except KeyboardInterrupt:
                pool.shutdown(cancel_futures=True)  # the episodes being recorded finish and are kept
                raise


# -- the LeRobot v3 dataset --------------------------------------------------------------------
def write_dataset(out: Path, tasks: list[str], selected: dict[str, list[int]], cameras: Sequence[str],
                  lerobot_env: bool = False) -> None:
    """Consolidate the selected ``raw/`` episodes into the dataset layout (see module doc); ``lerobot_env``:
    frames as PNG ``image`` features in the parquet files, no depth or extrinsics."""
    from wamzoo.data.lerobot import write_stats

    if lerobot_env:
        return _write_plain(out, tasks, selected, cameras)

    paths = [(t, s, next(p for p in (out / "raw" / t / f"{s:07d}.{status}.npz" for status in ("ok", "fail"))
                         if p.is_file())) for t in tasks for s in selected[t]]
    lengths = [len(read_episode(path, ["reward"])["reward"]) for _, _, path in paths]
    N = sum(lengths)
    ep = read_episode(paths[0][2], ["fps", "rgb", "intrinsics"])
    fps, (H, W) = float(ep["fps"]), ep["rgb"].shape[-2:]
    intrinsics = {cam: ep["intrinsics"][v].tolist() for v, cam in enumerate(cameras)}
    frame_features = {key: (dtype, C) for cam in cameras
                      for key, dtype, C in ((image_key(cam), "uint8", 3), (depth_key(cam), "float16", 1))}
    (out / "arrays").mkdir(parents=True, exist_ok=True)
    arrays = {key: np.lib.format.open_memmap(out / "arrays" / f"{key}.tmp.npy", mode="w+", dtype=dtype,
                                             shape=(N, C, H, W)) for key, (dtype, C) in frame_features.items()}
    cols: dict[str, list] = {}
    episodes: list[dict] = []
    start = 0
    for i, ((task, seed, path), n) in enumerate(zip(paths, lengths)):
        ep = read_episode(path, ["rgb", "depth", "state", "action", "reward", "success", "extrinsics"])
        rows = {"episode_index": np.full(n, i), "frame_index": np.arange(n),
                "task_index": np.full(n, tasks.index(task)), "observation.state": ep["state"],
                "action": ep["action"], "next.reward": ep["reward"].astype(np.float32),
                "next.success": ep["success"], "next.done": np.arange(n) == n - 1}
        for v, cam in enumerate(cameras):
            rows[extrinsics_key(cam)] = ep["extrinsics"][:, v]
            arrays[image_key(cam)][start: start + n] = ep["rgb"][:, v]
            arrays[depth_key(cam)][start: start + n] = ep["depth"][:, v]
        for k, x in rows.items():
            cols.setdefault(k, []).append(x)
        episodes.append({"episode_index": i, "tasks": [task], "length": n, "dataset_from_index": start,
                         "dataset_to_index": start + n, "data/chunk_index": 0, "data/file_index": 0,
                         "seed": seed, "success": bool(ep["success"].any())})
        start += n
    for key, arr in arrays.items():
        arr.flush()
        os.replace(out / "arrays" / f"{key}.tmp.npy", out / "arrays" / f"{key}.npy")
    data = {k: np.concatenate(v) for k, v in cols.items()}
    data["index"] = np.arange(N)
    data["timestamp"] = (data["frame_index"] / fps).astype(np.float32)
    _write_parquet(out / DATA_FILE, data)
    _write_parquet(out / EPISODES_FILE, {k: [r[k] for r in episodes] for k in episodes[0]})
    _write_parquet(out / "meta/tasks.parquet", {"task_index": list(range(len(tasks))), "task": tasks})
    write_stats(out, data)
    features = _frame_features()
    features.update({extrinsics_key(cam): _feat("float32", [4, 4]) for cam in cameras})
    features.update({key: _feat(dtype, [C, H, W], ["channels", "height", "width"], storage=f"arrays/{key}.npy")
                     for key, (dtype, C) in frame_features.items()})
    seeds = [r["seed"] for r in episodes]
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": "sawyer", "total_episodes": len(episodes),
        "total_frames": N, "total_tasks": len(tasks), "chunks_size": 1000, "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "video_path": None,
        "features": features,
        "wamzoo": {"source": "metaworld", "tasks": tasks, "cameras": list(cameras), "height": H, "width": W,
                   "intrinsics": intrinsics, "seed_range": [min(seeds), max(seeds) + 1],
                   "episodes_per_task": {t: len(selected[t]) for t in tasks}},
    }
    tmp = out / "meta" / "info.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, out / "meta" / "info.json")


def _write_plain(out: Path, tasks: list[str], selected: dict[str, list[int]], cameras: Sequence[str]) -> None:
    """``write_dataset`` for ``--lerobot-env``: a LeRobot v3 dataset with every frame a PNG in the parquet
    files, as LeRobot's ``LeRobotDataset`` reads it."""
    import io

    from PIL import Image

    from wamzoo.data.lerobot import write_stats

    cols: dict[str, list] = {}
    episodes: list[dict] = []
    image_stats: dict[str, dict] = {}
    start, fps, H, W = 0, 80.0, 0, 0
    for i, (task, seed) in enumerate((t, s) for t in tasks for s in selected[t]):
        path = next(p for p in (out / "raw" / task / f"{seed:07d}.{st}.npz" for st in ("ok", "fail")) if p.is_file())
        ep = read_episode(path, ["rgb", "state", "action", "reward", "success", "fps"])
        n, fps, (H, W) = len(ep["action"]), float(ep["fps"]), ep["rgb"].shape[-2:]
        rows = {"episode_index": np.full(n, i), "frame_index": np.arange(n), "task_index": np.full(n, tasks.index(task)),
                "observation.state": ep["state"].astype(np.float32), "action": ep["action"].astype(np.float32),
                "next.reward": ep["reward"].astype(np.float32), "next.success": ep["success"],
                "next.done": np.arange(n) == n - 1}
        for k, x in rows.items():
            cols.setdefault(k, []).append(x)
        for v, cam in enumerate(cameras):
            x = ep["rgb"][:, v].astype(np.float64) / 255.0  # per-channel statistics, as LeRobot keeps them
            acc = image_stats.setdefault(cam, {"min": np.ones(3), "max": np.zeros(3), "sum": 0.0, "sq": 0.0, "n": 0})
            acc.update(min=np.minimum(acc["min"], x.min((0, 2, 3))), max=np.maximum(acc["max"], x.max((0, 2, 3))),
                       sum=acc["sum"] + x.sum((0, 2, 3)), sq=acc["sq"] + (x ** 2).sum((0, 2, 3)),
                       n=acc["n"] + x.size // 3)
            pngs = cols.setdefault(image_key(cam), [])
            for frame in ep["rgb"][:, v]:
                buf = io.BytesIO()
                Image.fromarray(frame.transpose(1, 2, 0)).save(buf, format="PNG")
                pngs.append({"bytes": buf.getvalue(), "path": None})
        episodes.append({"episode_index": i, "tasks": [task], "length": n, "dataset_from_index": start,
                         "dataset_to_index": start + n, "data/chunk_index": 0, "data/file_index": 0,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                         "seed": seed, "success": bool(ep["success"].any())})
        start += n
    N = start
    import pyarrow as pa

    png = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    data = {k: (pa.array(v, type=png) if k.startswith(IMAGE_PREFIX) else np.concatenate(v)) for k, v in cols.items()}
    data["index"] = np.arange(N)
    data["timestamp"] = (data["frame_index"] / fps).astype(np.float32)
    _write_parquet(out / DATA_FILE, data)
    _write_parquet(out / EPISODES_FILE, {k: [r[k] for r in episodes] for k in episodes[0]})
    _write_parquet(out / "meta/tasks.parquet", {"task_index": list(range(len(tasks))), "task": tasks})
    stats = json.loads(write_stats(out, data).read_text())
    for cam, acc in image_stats.items():
        mean = acc["sum"] / acc["n"]
        std = np.sqrt(np.maximum(acc["sq"] / acc["n"] - mean ** 2, 0.0))
        stats[image_key(cam)] = {k: v.reshape(3, 1, 1).tolist() for k, v in
                                 (("min", acc["min"]), ("max", acc["max"]), ("mean", mean), ("std", std))}
        stats[image_key(cam)]["count"] = [acc["n"] // (H * W)]
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
    features = _frame_features()
    features.update({image_key(cam): _feat("image", [H, W, 3], ["height", "width", "channels"]) for cam in cameras})
    seeds = [r["seed"] for r in episodes]
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": "sawyer", "total_episodes": len(episodes),
        "total_frames": N, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200, "fps": int(fps) if fps == int(fps) else fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "video_path": None,
        "features": features,
        "wamzoo": {"source": "metaworld", "lerobot_env": True, "tasks": tasks, "cameras": list(cameras), "height": H,
                   "width": W, "seed_range": [min(seeds), max(seeds) + 1],
                   "episodes_per_task": {t: len(selected[t]) for t in tasks}},
    }
    tmp = out / "meta" / "info.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, out / "meta" / "info.json")


IMAGE_PREFIX = "observation.images."


def _frame_features() -> dict:
    """The per-frame columns every Meta-World dataset has (cameras are added by the writer)."""
    return {
        "index": _feat("int64", [1]), "episode_index": _feat("int64", [1]), "frame_index": _feat("int64", [1]),
        "timestamp": _feat("float32", [1]), "task_index": _feat("int64", [1]),
        "observation.state": _feat("float32", [4], ["hand_x", "hand_y", "hand_z", "gripper_open"]),
        "action": _feat("float32", [4], ["dx", "dy", "dz", "grip"]), "next.reward": _feat("float32", [1]),
        "next.success": _feat("bool", [1]), "next.done": _feat("bool", [1]),
    }


def _feat(dtype: str, shape: list[int], names: list[str] | None = None, **extra) -> dict:
    return {"dtype": dtype, "shape": shape, "names": names, **extra}


def _write_parquet(path: Path, columns: dict) -> None:
    """Columns of numpy arrays (trailing dims flattened to fixed-size lists) or Python lists, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = {}
    for k, v in columns.items():
        if isinstance(v, pa.Array):
            table[k] = v
        elif isinstance(v, np.ndarray) and v.ndim > 1:
            width = int(np.prod(v.shape[1:]))
            table[k] = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), width)
        else:
            table[k] = pa.array(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(table), tmp)
    os.replace(tmp, path)


# -- command line ------------------------------------------------------------------------------
def generate_from_args(args) -> int:
    """``wamzoo data metaworld``: see :func:`generate`."""
    from rich.console import Console

    from wamzoo.envs.metaworld import suite_tasks

    tasks = suite_tasks(args.suite, args.tasks)
    cameras = args.cameras.split(",") if args.cameras else None
    t0 = time.perf_counter()
    out = generate(args.out, tasks, args.episodes, seed=args.seed, workers=args.workers,
                   keep_failures=args.keep_failures, cameras=cameras, size=args.size or 64,
                   lerobot_env=getattr(args, "lerobot_env", False), noise=args.noise, settle=args.settle, aim=args.aim)
    info = json.loads((out / "meta" / "info.json").read_text())
    Console().print(f"[green]wrote[/] {out}: {info['total_episodes']} episodes, {info['total_frames']} frames,"
                    f" seeds {info['wamzoo']['seed_range']} ({time.perf_counter() - t0:.0f} s)")
    return 0
