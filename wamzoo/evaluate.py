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

Each task's episodes run in groups of ``batch`` stepped in lockstep: one batched policy call per
chunk serves the whole group, and each episode draws its noise from its own seed, so its actions are
those it would get alone. Only the frames a later call looks at are rendered, and a task's
environments share one renderer. Reported per task: success rate, mean steps to success, policy
latency per chunk (one batched call), and control frequency (actions per second end to end:
rendering, policy and physics). A coupling that times its own parts (``timings()``, e.g. AHA-WAM's
executor per chunk and planner per refresh) has them averaged per task and printed under the table.
Groups run in worker processes that each load the policy from its reference (on ``device`` at
``dtype``); an in-memory policy or ``workers=0`` runs inline. With ``--json F`` the finished episodes
are kept in ``F.partial`` until the report is written, and the same command run again after an
interruption resumes from them (:mod:`wamzoo.journal`). ``video_dir`` gets one MP4 per episode (GIF if
ffmpeg is unavailable): the camera views, and below them the policy's predicted frames when it predicts
video.
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
from wamzoo.journal import EvalJournal, fingerprint
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
    closest: float | None = None  # least distance (m) of the task's object (reach: the hand) to its target, Meta-World's
    #                               ``obj_to_target``: how short of the goal a failure stopped (success: <= 0.05 on reach)


# -- agents: what chooses actions --------------------------------------------------------------
class ScriptedAgent:
    """Meta-World's scripted expert (reads the privileged state; one action per call and episode)."""

    label, cameras, size, replan, frame_stride, lerobot_env = "scripted", (), 64, 1, 1, False

    def reset(self, task: str, seeds: Sequence[int]) -> None:
        from wamzoo.envs.metaworld import expert

        self.act_fn, self.privileged = expert(task), [None] * len(seeds)

    def observe(self, i: int, obs: dict, info: dict) -> None:
        self.privileged[i] = info["privileged"]

    def act(self, decode: bool) -> list[tuple[np.ndarray, None]]:
        return [(self.act_fn(p)[None], None) for p in self.privileged]

    def timing(self) -> None:
        return None

    def needs_frame(self, step: int) -> bool:
        return False

    def finish(self, i: int) -> None:
        pass


class PolicyAgent:
    """A :class:`~wamzoo.policy.WAMPolicy` fed the observations it was trained on, for a group of
    episodes of one task stepped in lockstep: one batched ``predict`` per chunk, each episode with its own
    noise generator seeded by its layout seed, so its actions are those it would get alone (the
    conformance suite checks batched == alone for every composition)."""

    def __init__(self, policy, replan: int, label: str = "policy", frame_lag: int = 0, ensemble: float | None = None):
        info = policy.info
        if info is None or not info.cameras:
            raise WamzooError("this policy does not record its cameras (DataInfo.cameras); train it on a Meta-World"
                              " dataset (data: {name: metaworld}) to evaluate it here")
        if info.height != info.width:
            raise WamzooError(f"the benchmark renders square images; the policy expects {info.height}x{info.width}")
        self.policy, self.info, self.label = policy.eval(), info, label
        self.cameras, self.size, self.lerobot_env = tuple(info.cameras), info.height, info.lerobot_env
        if ensemble is not None and ensemble < 0:
            raise WamzooError(f"temporal ensembling weighs the i-th oldest prediction by exp(-m i): m must be 0 or"
                              f" more, got {ensemble}")
        self.ensemble = ensemble  # ACT's temporal ensembling: a call every step, past chunks averaged
        self.replan = 1 if ensemble is not None else max(1, min(replan, info.horizon))
        self.frame_stride = info.frame_stride
        if frame_lag < 0:
            raise WamzooError(f"frame_lag is how many steps the frames lag behind the present: use 0 or more,"
                              f" got {frame_lag}")
        self.frame_lag = frame_lag
        self.span = (info.n_obs - 1) * info.frame_stride + 1 + frame_lag

    def reset(self, task: str, seeds: Sequence[int]) -> None:
        self.policy.reset()
        self.task_id = self.policy.task_id(task)
        self.histories: list[deque] = [deque(maxlen=self.span) for _ in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.samples: list[dict | None] = [None] * len(seeds)
        self.finished: set[int] = set()
        self.pending: list[list[np.ndarray]] = [[] for _ in seeds]  # per episode: past chunks' unexecuted actions

    def observe(self, i: int, obs: dict, info: dict) -> None:
        self.histories[i].append(obs)

    def needs_frame(self, step: int) -> bool:
        """Whether the frame after env step ``step`` is one a later call looks at: calls come every ``replan``
        steps, read the present camera (its pose, and the present frame when frames lag) and look
        ``frame_lag + k * frame_stride`` steps back (k < n_obs). The others are not rendered."""
        back = [self.frame_lag + k * self.frame_stride for k in range(self.info.n_obs)]
        return any((step + b) % self.replan == 0 for b in (0, *back))

    def sample(self, history: deque) -> dict:
        """One episode's observation: ``n_obs`` frames ``frame_stride`` apart ending ``frame_lag`` steps ago
        (earlier frames padded at the start of an episode, the first frame standing in for a lagged one
        not yet seen), the present state and, when the frames lag, the present frame."""
        s, n = self.info.frame_stride, self.info.n_obs
        have = len(history)
        picks = [have - 1 - self.frame_lag - (n - 1 - j) * s for j in range(n)]
        frames = [history[max(p, 0)] for p in picks]
        now = history[-1]
        if any("rgb" not in f for f in (*frames, now)):
            raise WamzooError("a frame the policy looks at was not rendered: PolicyAgent.needs_frame disagrees with"
                              " PolicyAgent.sample")
        t = lambda x: torch.from_numpy(np.asarray(x))  # noqa: E731
        sample = {"rgb": t(np.stack([f["rgb"] for f in frames])), "n_obs": n, "state": t(now["state"]),
                  "frame_pad": t(np.array([p < 0 for p in picks[:-1]] + [False])),
                  "task_id": self.task_id, "intrinsics": t(now["intrinsics"]), "extrinsics": t(now["extrinsics"])}
        if all("depth" in f for f in frames):  # not in LeRobot's view (MetaWorldEnv.like_lerobot)
            sample["depth"] = t(np.stack([f["depth"] for f in frames]))
        if self.frame_lag:
            sample["rgb_now"] = t(now["rgb"])[None]
        return sample

    def finish(self, i: int) -> None:
        """Episode ``i`` is over: its row keeps its last observation (the batch stays the same size)."""
        self.finished.add(i)

    def batch(self) -> Batch:
        """The group's observations as one batch (episode ``i`` at row ``i``)."""
        self.samples = [s if i in self.finished else self.sample(h)
                        for i, (s, h) in enumerate(zip(self.samples, self.histories))]
        return Batch.collate(self.samples)

    def timing(self) -> dict[str, float] | None:
        """The coupling's timings of this group (``Coupling.timings()``), if it reports any."""
        stats = self.policy.coupling.timings()
        return {k: float(v) for k, v in stats.items()} or None

    def act(self, decode: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
        out = self.policy.predict(self.batch(), generator=self.generators, decode=decode)
        frames = out.get("frames")
        actions = out["action"].float().cpu().numpy()
        actions = actions[:, : self.replan] if self.ensemble is None else self.ensembled(actions)
        frames = None if frames is None else frames.float().cpu().numpy()
        return [(a, None if frames is None else frames[i]) for i, a in enumerate(actions)]

    def ensembled(self, chunks: np.ndarray) -> np.ndarray:
        """ACT's temporal ensembling (Zhao et al. 2023, §3.3): this step's action is the average of every
        chunk's prediction for it, the i-th oldest weighted ``exp(-m i)``; ``[B, K, A]`` -> ``[B, 1, A]``."""
        out = []
        for i, chunk in enumerate(chunks):
            self.pending[i].append(chunk)
            now = np.stack([c[0] for c in self.pending[i]])
            w = np.exp(-self.ensemble * np.arange(len(now)))
            out.append((w[:, None] * now).sum(0, keepdims=True) / w.sum())
            self.pending[i] = [c[1:] for c in self.pending[i] if len(c) > 1]
        return np.stack(out)


# -- episodes ----------------------------------------------------------------------------------
class Runner:
    """Runs groups of episodes of one task in lockstep, keeping one environment per episode of a group
    (for the task at hand only)."""

    def __init__(self, agent, max_steps: int, video_dir: str | None):
        self.agent, self.max_steps, self.video_dir = agent, max_steps, video_dir
        self.task, self.envs = None, []

    def _envs(self, task: str, n: int) -> list:
        from wamzoo.envs.metaworld import DEFAULT_CAMERAS, MetaWorldEnv

        if task != self.task:
            self.close()
            self.task = task
        cameras = self.agent.cameras or (DEFAULT_CAMERAS if self.video_dir else ())
        while len(self.envs) < n:  # a policy trained on LeRobot's Meta-World observations sees them here too
            self.envs.append(MetaWorldEnv.like_lerobot(task, self.agent.size, "eval", self.max_steps)
                             if self.agent.lerobot_env
                             else MetaWorldEnv(task, cameras, self.agent.size, self.agent.size, split="eval",
                                               max_steps=self.max_steps))
        return self.envs[:n]

    def episodes(self, task: str, seeds: Sequence[int]) -> list[EpisodeResult]:
        """One episode per seed, stepped together: each policy call serves every episode still running (a
        finished one keeps its last observation, so a stateful coupling sees a fixed batch)."""
        envs, agent, n = self._envs(task, len(seeds)), self.agent, len(seeds)
        t0 = time.perf_counter()
        agent.reset(task, seeds)
        for i, (env, seed) in enumerate(zip(envs, seeds)):
            obs, info = env.reset(seed=seed)
            agent.observe(i, obs, info)
        steps, chunks, policy_s, wall = [0] * n, [0] * n, [0.0] * n, [0.0] * n
        success, done, closest = [False] * n, [False] * n, [None] * n
        record = self.video_dir is not None
        videos: list[list[np.ndarray]] = [[] for _ in seeds]
        while not all(done):
            tc = time.perf_counter()
            outs = agent.act(decode=record)
            dt = time.perf_counter() - tc
            for i, (actions, predicted) in enumerate(outs):
                if done[i]:
                    continue
                policy_s[i] += dt
                chunks[i] += 1
                for k, action in enumerate(actions):
                    render = record or agent.needs_frame(steps[i] + 1)
                    obs, _, _, truncated, info = envs[i].step(action, render=render)
                    steps[i] += 1
                    success[i] = bool(info["success"])
                    if "obj_to_target" in info:
                        d = float(info["obj_to_target"])
                        closest[i] = d if closest[i] is None else min(d, closest[i])
                    agent.observe(i, obs, info)
                    if record:
                        videos[i].append(_panel(obs["rgb"], predicted, k + 1, agent.frame_stride))
                    if success[i] or truncated:
                        done[i], wall[i] = True, time.perf_counter() - t0
                        agent.finish(i)
                        break
        timing = agent.timing()
        results = [EpisodeResult(task, seed, success[i], steps[i], chunks[i], policy_s[i], wall[i], timing=timing,
                                 closest=closest[i])
                   for i, seed in enumerate(seeds)]
        for r, frames in zip(results, videos) if record else ():
            r.video = write_video(Path(self.video_dir) / f"{task}_{r.seed}_{'ok' if r.success else 'fail'}", frames)
        return results

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


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


def _make_agent(ref: str, replan: int, frame_lag: int = 0, device: str | None = None, dtype: str | None = None,
                ensemble: float | None = None):
    if ref == "scripted":
        return ScriptedAgent()
    return PolicyAgent(load_policy(ref, device=device, dtype=dtype), replan, label=ref, frame_lag=frame_lag,
                       ensemble=ensemble)


def _init_worker(ref: str, replan: int, frame_lag: int, max_steps: int, video_dir: str | None, threads: int,
                 device: str | None, dtype: str | None, ensemble: float | None) -> None:
    global _RUNNER
    torch.set_num_threads(threads)
    _RUNNER = Runner(_make_agent(ref, replan, frame_lag, device, dtype, ensemble), max_steps, video_dir)


def _run(task: str, seeds: list[int]) -> list[EpisodeResult]:
    return _RUNNER.episodes(task, seeds)


# -- evaluation --------------------------------------------------------------------------------
def evaluate(policy, suite: str | None = "mw-easy", tasks: Sequence[str] | str | None = None, episodes: int = 10,
             seed: int | None = None, replan: int | None = None, max_steps: int | None = None, workers: int = 2,
             video_dir: str | None = None, reference: str | None = None, command: str | None = None,
             progress: bool = True, frame_lag: int = 0, batch: int = 10, device: str | None = None,
             dtype: str | None = None, ensemble: float | None = None, journal: str | Path | None = None) -> dict:
    """Evaluate ``policy`` in closed loop; returns the JSON-ready report (see module doc).

    ``policy`` is a :class:`~wamzoo.policy.WAMPolicy`, a reference :func:`~wamzoo.loading.load_policy`
    accepts, or ``"scripted"``. Worker processes load it from its reference (``reference`` for an
    in-memory policy); without one, or with ``workers=0``, episodes run inline. Each task's episodes run
    in groups of ``batch`` stepped in lockstep, one batched policy call per chunk for the whole group;
    an episode's actions do not depend on its group (its noise comes from its own seed). A policy loaded
    from a reference is placed on ``device`` at ``dtype`` (an in-memory one runs where it is). With
    ``journal`` (a path), finished episodes are recorded there as they finish and those it already holds
    are not run again (:mod:`wamzoo.journal`).

    >>> report = evaluate("runs/mw-tiny", suite="mw-easy", episodes=5)          # doctest: +SKIP
    >>> report["tasks"]["reach-v3"]["success_rate"]                             # doctest: +SKIP
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from wamzoo.envs.metaworld import EVAL_SEEDS, check_seeds, suite_tasks

    if episodes < 1:
        raise UsageError(f"episodes per task (--episodes) must be 1 or more, got {episodes}")
    if batch < 1:
        raise UsageError(f"episodes stepped together (--batch) must be 1 or more, got {batch}")
    seed = EVAL_SEEDS.start if seed is None else seed
    seeds = list(range(seed, seed + episodes))
    check_seeds(seeds, "eval")
    max_steps = max_steps or DEFAULT_MAX_STEPS
    if isinstance(policy, str):
        reference, agent = policy, _make_agent(policy, replan or 8, frame_lag, device, dtype, ensemble)
    else:
        agent = PolicyAgent(policy, replan or 8, label=reference or "policy", frame_lag=frame_lag, ensemble=ensemble)
    names = suite_tasks(suite, tasks, known=agent.policy.tasks if isinstance(agent, PolicyAgent) else None)
    if isinstance(agent, PolicyAgent):
        _check_disjoint(agent.info.seed_range, seeds)
    placed = agent.policy if isinstance(agent, PolicyAgent) else None
    book = None if journal is None else EvalJournal(journal, dict(
        policy=fingerprint(placed) if placed is not None else agent.label, replan=agent.replan, max_steps=max_steps,
        frame_lag=frame_lag, ensemble=ensemble, device=str(placed.device) if placed is not None else "cpu",
        dtype=str(placed.dtype).removeprefix("torch.") if placed is not None else None))
    done = {} if book is None else book.done
    results = [EpisodeResult(**done[(t, s)]) for t in names for s in seeds if (t, s) in done]
    todo = {t: [s for s in seeds if (t, s) not in done] for t in names}
    groups = [(t, todo[t][i:i + batch]) for t in names for i in range(0, len(todo[t]), batch)]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    t0 = time.perf_counter()

    def finished(group: list[EpisodeResult]) -> None:
        results.extend(group)
        bar.advance(job, len(group))
        if book is not None:
            book.record([asdict(r) for r in group], time.perf_counter() - t0)

    with Progress(*columns, disable=not progress) as bar:
        job = bar.add_task(f"eval {agent.label}", total=len(names) * len(seeds), completed=len(results))
        if results:
            bar.console.print(f"resuming: {len(results)} of {len(names) * len(seeds)} episodes already in {journal}")
        if workers <= 0 or reference is None:
            runner = Runner(agent, max_steps, video_dir)
            try:
                for t, group in groups:
                    finished(runner.episodes(t, group))
            finally:
                runner.close()
        elif groups:
            threads = max(1, torch.get_num_threads() // workers)
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(reference, agent.replan, frame_lag, max_steps, video_dir,
                                               threads, device, dtype, ensemble)) as pool:
                for fut in as_completed([pool.submit(_run, t, group) for t, group in groups]):
                    finished(fut.result())
    wall = time.perf_counter() - t0 + (0.0 if book is None else book.previous_wall_s)
    return report(results, names, None if tasks else suite, seeds, wall, policy=agent.label, replan=agent.replan,
                  frame_lag=frame_lag, ensemble=ensemble, max_steps=max_steps, workers=workers, batch=batch,
                  device=str(placed.device) if placed is not None else "cpu",
                  dtype=str(placed.dtype).removeprefix("torch.") if placed is not None else None,
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
        short = [r.closest for r in rs if not r.success and r.closest is not None]
        if short:  # how far from the goal failures got at best: misread goals stop far, imprecise ones near
            per_task[t]["failures_closest_median_m"] = float(np.median(short))
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
                  f" ({rep['workers']} workers, {rep.get('batch', 1)} episodes per policy call"
                  + (f", {rep['device']} {rep['dtype']}" if rep.get("dtype") else "") + f", {rep['wall_s']:.0f} s)",
                  soft_wrap=True)
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
        policy = load_policy(ref, device=args.device, dtype=args.dtype)
        recipe_eval = (policy.config.get("recipe") or {}).get("eval") or {}
        spec = EvalSpec(**{k: v for k, v in recipe_eval.items() if k in EvalSpec.__dataclass_fields__})
    pick = lambda value, default: default if value is None else value  # noqa: E731
    journal = Path(f"{args.json}.partial") if args.json else None
    rep = evaluate(policy, suite=pick(args.suite, spec.suite), tasks=args.tasks,
                   episodes=pick(args.episodes, spec.episodes), seed=pick(args.seed, spec.seed),
                   replan=pick(args.replan, spec.replan), max_steps=pick(args.max_steps, spec.max_steps),
                   workers=pick(args.workers, spec.workers), video_dir=args.video, reference=ref,
                   frame_lag=args.frame_lag, batch=pick(args.batch, spec.batch), device=args.device, dtype=args.dtype,
                   ensemble=pick(args.ensemble, spec.ensemble), journal=journal)
    print_report(rep, Console())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rep, indent=2))
        journal.unlink(missing_ok=True)  # the report now holds every episode (wamzoo.journal)
    return 0
