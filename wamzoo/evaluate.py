"""Closed-loop evaluation on the embedded Meta-World benchmark, with rollout videos.

    wamzoo eval runs/mw-tiny --suite mw-easy --episodes 10 --seed 1000000 --json results.json
    wamzoo eval --policy scripted --suite mw-easy --episodes 5        # Meta-World's experts: the ceiling

Each task runs ``episodes`` episodes on the layouts of evaluation seeds ``seed, seed + 1, ...``
(disjoint from training seeds by construction; a policy whose demonstrations used any of them is
refused). A policy sees what it was trained on (its ``DataInfo``: cameras, image size, ``n_obs``
frames ``frame_stride`` apart, proprio state, task id) and its predicted chunk is executed for
``replan`` steps before it is asked again. An episode succeeds when the environment's own
``success`` flag is raised within ``max_steps`` steps. With ``frame_lag`` L the frames the policy
sees end L steps before the present (a camera or planner that lags the controller); the state and
the present frame (``batch.rgb_now``, for components that observe the chunk start, e.g.
AHA-WAM's executor) stay current. AHA-WAM's planner frame then falls L steps before the chunk
grid: the phase its horizon-adaptive offset training covers.

Reported per task: success rate, mean steps to success, policy latency per chunk, and control
frequency (actions per second end to end: rendering, policy and physics). A coupling that times its
own parts (``timings()``, e.g. AHA-WAM's executor per chunk and planner per refresh) has
them averaged per task and printed under the table. Episodes run in worker
processes that each load the policy from its reference; an in-memory policy or ``workers=0``
runs inline. ``video_dir`` gets one MP4 per episode (GIF if ffmpeg is unavailable): the camera
views, and below them the policy's predicted frames when it predicts video.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from wamzoo.batch import Batch
from wamzoo.errors import OutputError, UsageError, WamzooError
from wamzoo.loading import load_policy
from wamzoo.recipes import EvalSpec

DEFAULT_MAX_STEPS = 300
VIDEO_FPS, VIDEO_SCALE = 30, 4


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int                  # env steps taken (the success step if it succeeded)
    chunks: int                 # policy calls
    policy_s: float             # time inside the policy
    wall_s: float               # whole episode, end to end
    video: str | None = None
    timing: dict[str, float] | None = None  # the coupling's own timings (``timings()``), if it has them


# -- agents: what chooses actions --------------------------------------------------------------
class ScriptedAgent:
    """Meta-World's scripted expert (reads the privileged state; one action per call)."""

    label, cameras, size, replan, frame_stride = "scripted", (), 64, 1, 1

    def reset(self, task: str, seed: int) -> None:
        from wamzoo.envs.metaworld import expert

        self.act_fn = expert(task)

    def observe(self, obs: dict, info: dict) -> None:
        self.privileged = info["privileged"]

    def act(self, decode: bool) -> tuple[np.ndarray, None]:
        return self.act_fn(self.privileged)[None], None


class PolicyAgent:
    """A :class:`~wamzoo.policy.WAMPolicy` fed the observations it was trained on."""

    def __init__(self, policy, replan: int, label: str = "policy", frame_lag: int = 0):
        info = policy.info
        if info is None or not info.cameras:
            raise WamzooError("this policy does not record its cameras (DataInfo.cameras); train it on a Meta-World"
                              " dataset (data: {name: metaworld}) to evaluate it here")
        if info.height != info.width:
            raise WamzooError(f"the benchmark renders square images; the policy expects {info.height}x{info.width}")
        self.policy, self.info, self.label = policy.eval(), info, label
        self.cameras, self.size = tuple(info.cameras), info.height
        self.replan = max(1, min(replan, info.horizon))
        self.frame_stride = info.frame_stride
        if frame_lag < 0:
            raise WamzooError(f"frame_lag is how many steps the frames lag behind the present: use 0 or more,"
                              f" got {frame_lag}")
        self.frame_lag = frame_lag
        self.span = (info.n_obs - 1) * info.frame_stride + 1 + frame_lag

    def reset(self, task: str, seed: int) -> None:
        self.policy.reset()
        self.task_id = self.policy.task_id(task)
        self.history: deque = deque(maxlen=self.span)
        self.generator = torch.Generator().manual_seed(seed)

    def observe(self, obs: dict, info: dict) -> None:
        self.history.append(obs)

    def batch(self) -> Batch:
        """The observation batch: ``n_obs`` frames ``frame_stride`` apart ending ``frame_lag`` steps ago
        (earlier frames padded at the start of an episode, the first frame standing in for a lagged one
        not yet seen), the present state and, when the frames lag, the present frame."""
        s, n = self.info.frame_stride, self.info.n_obs
        have = len(self.history)
        picks = [have - 1 - self.frame_lag - (n - 1 - j) * s for j in range(n)]
        frames = [self.history[max(p, 0)] for p in picks]
        now = self.history[-1]
        t = lambda x: torch.from_numpy(np.asarray(x))[None]  # noqa: E731
        rgb_now = t(now["rgb"])[:, None] if self.frame_lag else None
        pad = [p < 0 for p in picks[:-1]] + [False]
        return Batch(rgb=t(np.stack([f["rgb"] for f in frames])), n_obs=n, state=t(now["state"]),
                     depth=t(np.stack([f["depth"] for f in frames])), frame_pad=t(np.array(pad)),
                     task_id=torch.tensor([self.task_id]), intrinsics=t(now["intrinsics"]),
                     extrinsics=t(now["extrinsics"]), rgb_now=rgb_now)

    def timing(self) -> dict[str, float] | None:
        """The coupling's timings of this episode (``Coupling.timings()``), if it reports any."""
        stats = self.policy.coupling.timings()
        return {k: float(v) for k, v in stats.items()} or None

    def act(self, decode: bool) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.policy.predict(self.batch(), generator=self.generator, decode=decode)
        frames = out.get("frames")
        return out["action"][0, : self.replan].numpy(), None if frames is None else frames[0].numpy()


# -- one episode -------------------------------------------------------------------------------
class Runner:
    """Runs episodes for one agent, keeping one environment per task."""

    def __init__(self, agent, max_steps: int, video_dir: str | None):
        self.agent, self.max_steps, self.video_dir = agent, max_steps, video_dir
        self.envs: dict[str, Any] = {}

    def env(self, task: str):
        from wamzoo.envs.metaworld import DEFAULT_CAMERAS, MetaWorldEnv

        if task not in self.envs:
            cameras = self.agent.cameras or (DEFAULT_CAMERAS if self.video_dir else ())
            self.envs[task] = MetaWorldEnv(task, cameras, self.agent.size, self.agent.size, split="eval",
                                           max_steps=self.max_steps)
        return self.envs[task]

    def episode(self, task: str, seed: int) -> EpisodeResult:
        env, agent = self.env(task), self.agent
        t0 = time.perf_counter()
        obs, info = env.reset(seed=seed)
        agent.reset(task, seed)
        agent.observe(obs, info)
        steps = chunks = 0
        policy_s, success, truncated = 0.0, False, False
        video: list[np.ndarray] = []
        record = self.video_dir is not None
        while not (success or truncated):
            tc = time.perf_counter()
            actions, predicted = agent.act(decode=record)
            policy_s += time.perf_counter() - tc
            chunks += 1
            for k, action in enumerate(actions):
                obs, _, _, truncated, info = env.step(action)
                steps += 1
                success = bool(info["success"])
                agent.observe(obs, info)
                if record:
                    video.append(_panel(obs["rgb"], predicted, k + 1, agent.frame_stride))
                if success or truncated:
                    break
        result = EpisodeResult(task, seed, success, steps, chunks, policy_s, time.perf_counter() - t0,
                               timing=getattr(agent, "timing", lambda: None)())
        if record:
            result.video = write_video(Path(self.video_dir) / f"{task}_{seed}_{'ok' if success else 'fail'}", video)
        return result

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _panel(rgb: np.ndarray, predicted: np.ndarray | None, k: int, stride: int) -> np.ndarray:
    """Views side by side (``[V, 3, H, W]``) after step ``k`` of a chunk, above the predicted frame nearest to it."""
    row = lambda x: np.concatenate(list(x.transpose(0, 2, 3, 1)), axis=1)  # noqa: E731
    image = row(rgb)
    if predicted is not None:
        j = int(np.clip(round(k / stride), 1, len(predicted))) - 1
        image = np.concatenate([image, row((predicted[j] * 255).round().astype(np.uint8))], axis=0)
    return image.repeat(VIDEO_SCALE, 0).repeat(VIDEO_SCALE, 1)


def write_video(stem: Path, frames: Sequence[np.ndarray]) -> str:
    """Write ``stem.mp4`` (or ``stem.gif`` without ffmpeg); returns the path written."""
    import imageio.v3 as iio

    stem.parent.mkdir(parents=True, exist_ok=True)
    try:
        iio.imwrite(stem.with_suffix(".mp4"), np.stack(frames), fps=VIDEO_FPS, codec="libx264", macro_block_size=1)
        return str(stem.with_suffix(".mp4"))
    except Exception:  # no ffmpeg: GIF through pillow
        iio.imwrite(stem.with_suffix(".gif"), np.stack(frames), duration=1000 / VIDEO_FPS, loop=0)
        return str(stem.with_suffix(".gif"))


# -- worker processes --------------------------------------------------------------------------
_RUNNER: Runner | None = None


def _make_agent(ref: str, replan: int, frame_lag: int = 0):
    if ref == "scripted":
        return ScriptedAgent()
    return PolicyAgent(load_policy(ref), replan, label=ref, frame_lag=frame_lag)


def _init_worker(ref: str, replan: int, frame_lag: int, max_steps: int, video_dir: str | None, threads: int) -> None:
    global _RUNNER
    torch.set_num_threads(threads)
    _RUNNER = Runner(_make_agent(ref, replan, frame_lag), max_steps, video_dir)


def _run(task: str, seed: int) -> EpisodeResult:
    return _RUNNER.episode(task, seed)


# -- evaluation --------------------------------------------------------------------------------
def evaluate(policy, suite: str | None = "mw-easy", tasks: Sequence[str] | str | None = None, episodes: int = 10,
             seed: int | None = None, replan: int | None = None, max_steps: int | None = None, workers: int = 2,
             video_dir: str | None = None, reference: str | None = None, command: str | None = None,
             progress: bool = True, frame_lag: int = 0) -> dict:
    """Evaluate ``policy`` in closed loop; returns the JSON-ready report (see module doc).

    ``policy`` is a :class:`~wamzoo.policy.WAMPolicy`, a reference :func:`~wamzoo.loading.load_policy`
    accepts, or ``"scripted"``. Worker processes load it from its reference (``reference`` for an
    in-memory policy); without one, or with ``workers=0``, episodes run inline.

    >>> report = evaluate("runs/mw-tiny", suite="mw-easy", episodes=5)          # doctest: +SKIP
    >>> report["tasks"]["reach-v3"]["success_rate"]                             # doctest: +SKIP
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from wamzoo.envs.metaworld import EVAL_SEEDS, check_seeds, suite_tasks

    if episodes < 1:
        raise UsageError(f"episodes per task (--episodes) must be 1 or more, got {episodes}")
    seed = EVAL_SEEDS.start if seed is None else seed
    seeds = list(range(seed, seed + episodes))
    check_seeds(seeds, "eval")
    max_steps = max_steps or DEFAULT_MAX_STEPS
    if isinstance(policy, str):
        reference, agent = policy, _make_agent(policy, replan or 8, frame_lag)
    else:
        agent = PolicyAgent(policy, replan or 8, label=reference or "policy", frame_lag=frame_lag)
    names = suite_tasks(suite, tasks, known=agent.policy.tasks if isinstance(agent, PolicyAgent) else None)
    if isinstance(agent, PolicyAgent):
        _check_disjoint(agent.info.seed_range, seeds)
    jobs = [(t, s) for t in names for s in seeds]
    results: list[EpisodeResult] = []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    t0 = time.perf_counter()
    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task(f"eval {agent.label}", total=len(jobs))
        if workers <= 0 or reference is None:
            runner = Runner(agent, max_steps, video_dir)
            try:
                for t, s in jobs:
                    results.append(runner.episode(t, s))
                    bar.advance(job)
            finally:
                runner.close()
        else:
            threads = max(1, torch.get_num_threads() // workers)
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(reference, agent.replan, frame_lag, max_steps, video_dir,
                                               threads)) as pool:
                for fut in as_completed([pool.submit(_run, t, s) for t, s in jobs]):
                    results.append(fut.result())
                    bar.advance(job)
    wall = time.perf_counter() - t0
    return report(results, names, None if tasks else suite, seeds, wall, policy=agent.label, replan=agent.replan,
                  frame_lag=frame_lag, max_steps=max_steps, workers=workers,
                  command=command or " ".join(["wamzoo"] + sys.argv[1:]))


def _check_disjoint(seed_range: list[int] | None, seeds: list[int]) -> None:
    from wamzoo.envs.metaworld import SeedError

    if seed_range and max(seeds) >= seed_range[0] and min(seeds) < seed_range[1]:
        raise SeedError(f"evaluation seeds {seeds[0]}..{seeds[-1]} overlap the policy's training seeds"
                        f" [{seed_range[0]}, {seed_range[1]}); evaluate on unseen layouts (--seed {seed_range[1]}"
                        f" or higher, default 1000000)")


def report(results: list[EpisodeResult], tasks: list[str], suite: str | None, seeds: list[int], wall: float,
           **meta: Any) -> dict:
    """Aggregate episodes into the benchmark report (per task and overall)."""
    per_task = {}
    for t in tasks:
        rs = sorted((r for r in results if r.task == t), key=lambda r: r.seed)
        won = [r for r in rs if r.success]
        chunks = sum(r.chunks for r in rs)
        per_task[t] = {
            "success_rate": len(won) / len(rs), "episodes": len(rs), "successes": len(won),
            "mean_steps_to_success": float(np.mean([r.steps for r in won])) if won else None,
            "policy_latency_ms": 1000 * sum(r.policy_s for r in rs) / max(chunks, 1),
            "control_hz": sum(r.steps for r in rs) / max(sum(r.wall_s for r in rs), 1e-9),
        }
        timed = [r.timing for r in rs if r.timing]
        if timed:
            per_task[t]["timing"] = {k: float(np.nanmean([d[k] for d in timed if k in d])) for k in timed[0]}
    rates = [v["success_rate"] for v in per_task.values()]
    steps = sum(r.steps for r in results)
    out = {"suite": suite, "tasks": per_task, "mean_success_rate": float(np.mean(rates)), **meta, "seeds": seeds,
           "env_steps_per_s": steps / wall, "episodes_per_min": 60 * len(results) / wall, "wall_s": wall,
           "episodes": [asdict(r) for r in sorted(results, key=lambda r: (tasks.index(r.task), r.seed))]}
    if "reach-v3" in per_task and len(per_task) > 1:
        out["mean_success_rate_without_reach"] = float(np.mean([v["success_rate"] for k, v in per_task.items()
                                                               if k != "reach-v3"]))
    return out


def print_report(rep: dict, console) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{rep['policy']} on {rep['suite'] or 'tasks'}: {len(rep['seeds'])} episodes per task,"
                        f" seeds {rep['seeds'][0]}.., replan {rep['replan']}"
                        + (f", frames {rep['frame_lag']} steps late" if rep.get("frame_lag") else ""),
                  box=box.SIMPLE_HEAD)
    table.add_column("task", no_wrap=True, min_width=max(len(t) for t in rep["tasks"]))
    for col in ("success", "episodes", "steps to success", "ms/chunk", "Hz"):
        table.add_column(col, justify="right")
    for name, t in rep["tasks"].items():
        steps = "-" if t["mean_steps_to_success"] is None else f"{t['mean_steps_to_success']:.0f}"
        table.add_row(name, f"{t['success_rate']:.0%}", str(t["episodes"]), steps, f"{t['policy_latency_ms']:.1f}",
                      f"{t['control_hz']:.0f}")
    table.add_row("[bold]mean", f"[bold]{rep['mean_success_rate']:.0%}", "", "", "", "")
    if "mean_success_rate_without_reach" in rep:
        table.add_row("mean without reach", f"{rep['mean_success_rate_without_reach']:.0%}", "", "", "", "")
    console.print(table)
    console.print(f"{rep['env_steps_per_s']:.0f} env steps/s, {rep['episodes_per_min']:.1f} episodes/min"
                  f" ({rep['workers']} workers, {rep['wall_s']:.0f} s)")
    for name, t in rep["tasks"].items():
        if t.get("timing"):
            console.print(f"{name} timings: " + ", ".join(f"{k} {v:.1f}" for k, v in t["timing"].items()))


def _check_writable(path: Path, option: str, folder: bool) -> None:
    """Refuse, before any episode, an output the evaluation could not write at its end."""
    kind = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        raise OutputError(f"{option} {path} is a {'file' if folder else 'folder'}; give a {kind} path")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() and existing != path:
        raise OutputError(f"{option} {path} cannot be written: {existing} is a file, not a folder; give a writable"
                          f" {kind} path")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{option} {path} cannot be written: {existing} is not writable; give a writable {kind}"
                          " path")


def evaluate_from_args(args) -> int:
    """``wamzoo eval``: defaults from the policy's recipe ``eval`` section, then the command line."""
    from rich.console import Console

    for path, option, folder in ((args.json, "--json", False), (args.video, "--video", True)):
        if path:
            _check_writable(Path(path), option, folder)
    ref = args.target or args.policy
    if ref is None:
        raise WamzooError("name what to evaluate: a checkpoint / run folder / saved policy, or --policy scripted")
    if args.target and args.policy:
        raise WamzooError("give either a policy reference or --policy, not both")
    policy, spec = ref, EvalSpec()
    if ref != "scripted":
        policy = load_policy(ref)
        recipe_eval = policy.config.get("recipe", {}).get("eval") or {}
        spec = EvalSpec(**{k: v for k, v in recipe_eval.items() if k in EvalSpec.__dataclass_fields__})
    pick = lambda value, default: default if value is None else value  # noqa: E731
    rep = evaluate(policy, suite=pick(args.suite, spec.suite), tasks=args.tasks,
                   episodes=pick(args.episodes, spec.episodes), seed=pick(args.seed, spec.seed),
                   replan=pick(args.replan, spec.replan), max_steps=pick(args.max_steps, spec.max_steps),
                   workers=pick(args.workers, spec.workers), video_dir=args.video, reference=ref,
                   frame_lag=args.frame_lag)
    print_report(rep, Console())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rep, indent=2))
    return 0
