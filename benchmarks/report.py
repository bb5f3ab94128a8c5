"""What the ``benchmarks/*_results.py`` scripts share: run a paper's jobs (training N at a time,
each long job under the machine-wide CPU lock, training minutes recorded in the run folder), read
what they wrote (eval/latency JSON, ``runs/<recipe>/metrics.csv``) and render the markdown tables
and the list of the commands behind every number. A script keeps only its paper's variants, extra
metrics and wording; a missing input renders as "not run", never as a typed-in number.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import itertools
import json
import math
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
LOCK = "/tmp/wamzoo-cpu.lock"
ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # 2 shared cores: OpenMP threads must not spin against other jobs
NOT_RUN = "not run"

def paper_proportions(action_dim: int = 128) -> list[str]:
    """``wamzoo bench latency --set`` overrides that widen a small Fast-WAM-sized recipe to the papers'
    proportions: the video expert 3x the action expert's width with FFN 14/3 of it (Wan2.2-5B: 3072,
    FFN 14336) and the action expert FFN 4x (ActionDiT: 1024, FFN 4096), one shared attention of
    64-wide heads, and 128 video tokens per frame (the paper: ~100-400) against the recipe's
    16-action chunk (the paper: 32)."""
    video, heads = 3 * action_dim, 3 * action_dim // 64
    return [f"policy.world_model.dim={video}", f"policy.world_model.ffn_dim={video * 14 // 3}",
            f"policy.world_model.num_heads={heads}", "policy.world_model.head_dim=64",
            f"policy.action_expert.dim={action_dim}", f"policy.action_expert.ffn_dim={4 * action_dim}",
            f"policy.action_expert.num_heads={heads}", "policy.action_expert.head_dim=64", "policy.codec.patch=4"]


#: The papers' proportions at the small width (an action expert 128 wide).
PAPER_PROPORTIONS = paper_proportions(128)
#: The same proportions 4x wider (action 512, video 1536), where matrix products rather than
#: per-operation overhead take a CPU's time, as they take a GPU's at the papers' sizes.
PAPER_SCALE = paper_proportions(512)
#: The papers' own widths (action 1024, video 3072 with FFN 14336) and tokens per frame; a latency
#: run keeps the recipe's few layers (every layer costs alike, so ratios hold; ~9 GB for two policies).
PAPER_WIDTH = paper_proportions(1024)


# -- jobs ------------------------------------------------------------------------------------------
@dataclass
class Job:
    """One command of a page. ``argv`` is what the page lists (and what runs unless ``call`` is
    given: then ``call()`` runs in this process and ``argv`` is how to redo it by hand)."""

    step: str  # the --run step it belongs to: train, eval, latency, ...
    argv: list[str]
    lock: bool = True  # holds LOCK while it runs
    run: str | None = None  # a training's run folder: train_minutes.txt, train_jobs.txt written there
    skip_if: str | None = None  # skip when this file exists (e.g. a data set's meta/info.json)
    call: Callable[[], object] | None = None
    after: str | None = None  # the run folder of a training in the same group that must end first (a stage 1)

    def shell(self, lock: bool | None = None) -> str:
        """The command as one shell line, with the environment and the lock it ran with."""
        env = " ".join(f"{k}={v}" for k, v in ENV.items())
        held = self.lock if lock is None else lock
        return f"{env} {'flock ' + LOCK + ' ' if held else ''}{shlex.join(self.argv)}"


def train_job(recipe: str, minutes: float | None = None, **kw) -> Job:
    """``wamzoo train RECIPE`` (with ``trainer.max_minutes`` only when a budget is given)."""
    extra = [] if minutes is None else [f"trainer.max_minutes={minutes:g}"]
    return Job("train", ["wamzoo", "train", recipe, *extra], run=f"runs/{recipe}", **kw)


def eval_job(run: str, target: list[str], episodes: int, out: str, **kw) -> Job:
    """``wamzoo eval RUN TARGET --episodes N --json OUT``."""
    return Job("eval", ["wamzoo", "eval", run, *target, "--episodes", str(episodes), "--json", out], **kw)


def unlocked_runs() -> list[str]:
    """Other ``wamzoo train|eval|data`` processes running now (e.g. started without the lock)."""
    out = subprocess.run(["pgrep", "-af", "wamzoo (train|eval|data)"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@contextmanager
def cpu_lock(path: str | None = LOCK, poll: float = 60.0):
    """Hold ``flock PATH`` (the lock the listed ``flock`` commands take), then also wait until no
    ``wamzoo train|eval|data`` started without it is running. ``path=None``: no lock."""
    if path is None:
        yield
        return
    with open(path, "a") as fh:
        print(f"[report] queueing on {path}", flush=True)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            while others := unlocked_runs():
                print(f"[report] holding {path}, waiting for: {others[0]}", flush=True)
                time.sleep(poll)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_one(job: Job, together: int, cwd: Path) -> float:
    print(f"[report] {job.shell(lock=False)}", flush=True)
    t0 = time.time()
    if job.call is not None:
        job.call()
    else:
        argv = [sys.executable, *job.argv[1:]] if job.argv[0] == "python" else job.argv
        subprocess.run(argv, cwd=cwd, env={**os.environ, **ENV}, check=True)
    minutes = (time.time() - t0) / 60
    if job.run:
        folder = cwd / job.run
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train_minutes.txt").write_text(f"{minutes:.1f}\n")
        (folder / "train_jobs.txt").write_text(f"{together}\n")
    return minutes


def run_jobs(jobs: Iterable[Job], n: int = 1, lock: str | None = LOCK, cwd: Path = ROOT) -> list[float]:
    """Run ``jobs`` ``n`` at a time (a new one starts when one ends); returns their minutes in order.

    ``n == 1``: each locked job holds the lock while it runs. ``n > 1``: the lock is held once for
    the whole group, which then has the CPU to itself. A training records its wall minutes and how
    many jobs ran side by side (``min(n, len(jobs))``) in its run folder. A job ``after`` another's run
    (listed before it) starts once that one has ended. The first failure raises after the jobs already
    running have ended; jobs not started yet are dropped."""
    todo = [j for j in jobs if not (j.skip_if and (cwd / j.skip_if).is_file())]
    if n <= 1:
        out = []
        for j in todo:
            with cpu_lock(lock if j.lock else None):
                out.append(_run_one(j, 1, cwd))
        return out
    together = min(n, len(todo))
    with cpu_lock(lock if any(j.lock for j in todo) else None), ThreadPoolExecutor(together) as pool:
        futures: list = []
        for j in todo:
            first = next((f for k, f in zip(todo, futures) if j.after and k.run == j.after), None)
            run = lambda j=j, first=first: (first.result() if first else None, _run_one(j, together, cwd))[1]  # noqa: E731
            futures.append(pool.submit(run))
        try:
            for f in as_completed(futures):
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return [f.result() for f in futures]


def run_steps(jobs: list[Job], steps: Iterable[str], n: int = 1, lock: str | None = LOCK, cwd: Path = ROOT) -> None:
    """Run the jobs of the chosen ``steps`` in list order; consecutive trainings ``n`` at a time."""
    chosen = [j for j in jobs if j.step in set(steps)]
    for step, group in itertools.groupby(chosen, key=lambda j: j.step):
        run_jobs(list(group), n if step == "train" else 1, lock=lock, cwd=cwd)


# -- inputs ----------------------------------------------------------------------------------------
def load(path: Path):
    """The JSON at ``path``, or None when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def _read_number(path: Path, kind=float):
    return kind(path.read_text().strip()) if path.is_file() else None


def training(run: Path, keys: Iterable[str] = ("train/loss",), n: int = 5) -> dict:
    """What a training run did: ``steps`` (optimiser steps, from metrics.csv's logs of ``keys``, or of
    anything when ``keys`` is empty), ``minutes`` and ``jobs`` (recorded by :func:`run_jobs`), ``threads``,
    ``max_minutes``, ``max_steps`` (its recipe, from hparams.yaml), ``action_bound`` (the largest absolute action
    of its data's statistics: above 1, the demonstrations recorded the experts' unclipped actions, see
    :mod:`wamzoo.data.generate`) and per loss key the mean of the ``first`` and ``last`` n logs."""
    out: dict = {"first": {}, "last": {}, "minutes": _read_number(run / "train_minutes.txt"),
                 "jobs": _read_number(run / "train_jobs.txt", int)}
    metrics = run / "metrics.csv"
    if metrics.is_file():
        with metrics.open() as fh:
            rows = list(csv.DictReader(fh))
        steps = [int(r["step"]) for r in rows if r.get("step") and (not keys or any(r.get(k) for k in keys))]
        if steps:
            out["steps"] = max(steps) + 1  # Lightning logs the step counter before it increments
        for k in keys:
            vals = [float(r[k]) for r in rows if r.get(k)]
            if vals:
                out["first"][k] = sum(vals[:n]) / len(vals[:n])
                out["last"][k] = sum(vals[-n:]) / len(vals[-n:])
    hparams = run / "hparams.yaml"
    if hparams.is_file():
        import yaml

        doc = yaml.safe_load(hparams.read_text()) or {}
        trainer = (doc.get("recipe") or {}).get("trainer") or {}
        out.update({k: trainer.get(k) for k in ("threads", "max_minutes", "max_steps")})
        action = ((doc.get("info") or {}).get("stats") or {}).get("action") or {}
        if action.get("min") and action.get("max"):
            out["action_bound"] = max(abs(float(v)) for v in [*action["min"], *action["max"]])
    return out


def recorded_training(run: Path, record: Path, keys: Iterable[str] = ("train/loss",), n: int = 5) -> dict:
    """:func:`training` of ``run``, kept in ``record`` (a JSON file committed with the results): ``runs/`` is not
    committed, so where the run folder is gone (a fresh clone, another machine) the page still shows what it
    did. A run folder present is the source and refreshes its record."""
    kept = load(record) or {}
    if not run.is_dir():
        return kept
    out = training(run, keys, n)
    for part in ("first", "last"):  # the losses other pages asked for stay
        out[part] = {**kept.get(part, {}), **out[part]}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(out, indent=1) + "\n")
    return out


# -- formatting ------------------------------------------------------------------------------------
def pct(x, missing: str = NOT_RUN) -> str:
    return missing if x is None else f"{100 * x:.0f}%"


def num(x, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def table(header: list[str], rows: Iterable[Iterable], align: str) -> list[str]:
    """Markdown table; ``align`` has one letter per column: ``l`` or ``r``."""
    return (["| " + " | ".join(header) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def header(title: str, script: str, *intro: str) -> list[str]:
    lines = [f"# {title}", "", f"Generated by `python {script}` from the files the commands below write;"
             " do not edit by hand." + "".join(" " + s for s in intro), ""]
    return lines


def mean_policy_ms(e: dict) -> float:
    return sum(v["policy_latency_ms"] for v in e["tasks"].values()) / len(e["tasks"])


def success_table(evals: dict[str, dict | None], ms_label: str = "policy ms / chunk in the eval loop") -> list[str]:
    """Success per task (rows) of each labelled evaluation (columns), their means and policy latency."""
    tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
    cols = list(evals.values())
    rows = [[t] + [pct(e["tasks"][t]["success_rate"]) if e else NOT_RUN for e in cols] for t in tasks]
    rows.append(["**mean**"] + [f"**{pct(e['mean_success_rate'])}**" if e else NOT_RUN for e in cols])
    if any(e and "mean_success_rate_without_reach" in e for e in cols):
        rows.append(["mean without reach"] + [pct(e.get("mean_success_rate_without_reach"), "-") if e else NOT_RUN
                                              for e in cols])
    rows.append([ms_label] + [f"{mean_policy_ms(e):.1f}" if e else "-" for e in cols])
    return table(["task", *evals], rows, "l" + "r" * len(cols))


def success_section(evals: dict[str, dict | None], episodes: int | str, suite: str = "mw-easy", note: str = "",
                    ms_label: str = "policy ms / chunk in the eval loop") -> list[str]:
    """``## Closed-loop success`` heading and :func:`success_table`."""
    return ([f"## Closed-loop success ({suite}, {episodes} evaluation layouts per task, seeds disjoint from"
             f" training{note})", ""] + success_table(evals, ms_label))


def eval_note(evals: Iterable[dict | None], per_chunk: str = "actions per chunk") -> str:
    """The evaluation settings of the first present evaluation ('' when none is)."""
    host = next((e for e in evals if e), None)
    if not host:
        return ""
    return (f"Evaluation: replan {host['replan']} {per_chunk}, at most {host['max_steps']} steps per episode,"
            f" seeds {host['seeds'][0]}..{host['seeds'][-1]}.")


def latency_by_target(rows: list[dict] | None) -> dict[str, dict]:
    return {r["target"]: r for r in rows or []}


def latency_table(rows: list[dict] | None, variants: dict[str, str], what: dict[str, str], base: str,
                  base_label: str) -> list[str]:
    """``wamzoo bench latency`` rows per variant, with the ratio of medians to ``base``'s."""
    lat = latency_by_target(rows)
    ref = lat.get(base, {}).get("median_ms")
    out = []
    for r, label in variants.items():
        row = lat.get(r)
        if row is None:
            out.append([label, what[r], "-", NOT_RUN, "-", "-"])
            continue
        out.append([label, what[r], f"{row['params_m']:.2f}", f"{row['median_ms']:.1f}", f"{row['p90_ms']:.1f}",
                    f"{row['median_ms'] / ref:.2f}" if ref else "-"])
    return table(["variant", "what runs per chunk", "params (M)", "median ms", "p90 ms", f"× {base_label}"], out,
                 "llrrrr")


def latency_section(rows: list[dict] | None, variants: dict[str, str], what: dict[str, str], base: str,
                    base_label: str) -> list[str]:
    """``## Per-chunk inference latency`` heading and :func:`latency_table`."""
    return (["## Per-chunk inference latency (`wamzoo bench latency`, batch 1, same inputs)", ""]
            + latency_table(rows, variants, what, base, base_label))


def ratio(rows: list[dict] | None, target: str, base: str) -> float | None:
    """Median latency of ``target`` over ``base``'s (None unless both were measured)."""
    lat = latency_by_target(rows)
    return lat[target]["median_ms"] / lat[base]["median_ms"] if target in lat and base in lat else None


def latency_note(rows: list[dict] | None) -> str:
    if not rows:
        return ""
    return (f"Latency: {rows[0]['repeats']} calls after warm-up, {rows[0]['threads']} threads, untrained weights of"
            " the recipes (latency does not depend on the weights).")


def training_table(runs: dict[str, str], records: str, root: Path = ROOT, losses: dict[str, str] | None = None,
                   n: int = 5, trend: bool = False) -> list[str]:
    """One row per run (recipe -> label): optimiser steps and minutes (of the recipe's caps), and
    the mean of the last ``n`` logs of each loss (``trend``: first n → last n, in one column).
    Below it, how the runs shared the CPU, as recorded when they ran. Each run's figures are kept in
    ``records/train-<run>.json`` (:func:`recorded_training`)."""
    losses = losses or {"train/loss": f"final loss (mean of last {n} logs)"}
    rows, side = [], {}
    for r, label in runs.items():
        tr = {"first": {}, "last": {}, **recorded_training(root / "runs" / r, root / records / f"train-{r}.json",
                                                            losses, n)}
        steps = NOT_RUN if tr.get("steps") is None else (
            f"{tr['steps']} / {tr['max_steps']}" if tr.get("max_steps") else str(tr["steps"]))
        minutes = "-" if tr.get("minutes") is None else (
            f"{tr['minutes']:g} / {tr['max_minutes']:g}" if tr.get("max_minutes") else f"{tr['minutes']:g}")
        if trend:
            cells = [", ".join(f"{k.rsplit('/', 1)[-1]} {tr['first'][k]:.3f} → {tr['last'][k]:.3f}"
                               for k in losses if k in tr["last"]) or "-"]
        else:
            cells = [num(tr["last"].get(k), ".4f") for k in losses]
        rows.append([label, steps, minutes, *cells])
        if tr.get("jobs"):
            side.setdefault((tr["jobs"], tr.get("threads")), []).append(label)
    cols = ["losses (first → last %d logs)" % n] if trend else list(losses.values())
    lines = table(["run", "optimiser steps / max", "minutes / cap", *cols], rows, "lrr" + ("l" if trend else
                                                                                           "r" * len(cols)))
    for (jobs, threads), labels in side.items():
        say = lambda k: {1: "one", 2: "two", 3: "three", 4: "four"}.get(k, str(k))  # noqa: E731
        how = "one at a time" if jobs == 1 else f"{say(jobs)} side by side"
        per = f", {say(threads)} thread{'s' if threads != 1 else ''} each" if threads else ""
        lines += ["", f"{', '.join(labels)}: trained {how}{per}."]
    return lines


def side_by_side(runs: Iterable[str], records: str, root: Path = ROOT) -> int:
    """The most trainings recorded as having run side by side among ``runs`` (1 when unknown)."""
    return max((recorded_training(root / "runs" / r, root / records / f"train-{r}.json", ()).get("jobs") or 1
                for r in runs), default=1)


def commands_section(jobs: list[Job], script: str, together: int = 1) -> list[str]:
    """The exact commands behind the page, in the order they run, and the page's own command.
    ``together > 1``: the trainings ran that many at a time, the group holding the lock once."""
    lines = ["## Commands", "", "```bash"]
    for step, group in itertools.groupby(jobs, key=lambda j: j.step):
        if step == "train" and together > 1:
            lines.append(f"# {together} at a time, together under flock {LOCK}:"
                         f" python {script} --run train --jobs {together}")
            lines += [j.shell(lock=False) for j in group]
        else:
            lines += [j.shell() for j in group]
    return lines + [f"python {script}", "```", ""]


# -- command line ----------------------------------------------------------------------------------
def main(argv, doc: str, steps: tuple[str, ...], page: str, jobs: Callable[[float | None], list[Job]],
         render: Callable[[float | None], str], minutes: float | None,
         minutes_help: str | None = "training budget per run (trainer.max_minutes)") -> int:
    """A results script's command line: ``--run [STEP ...]`` (run those jobs first, trainings
    ``--jobs`` at a time), ``--minutes`` (not offered when ``minutes_help`` is None: a page
    without trainings), ``--out`` (default ``results/PAGE``); writes the page."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--run", nargs="*", choices=steps, default=None, help="run these steps first (no value: all)")
    if minutes_help is not None:
        p.add_argument("--minutes", type=float, default=minutes, help=minutes_help)
    p.add_argument("--jobs", type=int, default=1, help="train this many runs at a time (default 1)")
    p.add_argument("--out", default=str(ROOT / "results" / page))
    args = p.parse_args(argv)
    args.minutes = getattr(args, "minutes", minutes)
    if args.run is not None:
        run_steps(jobs(args.minutes), args.run or steps, n=args.jobs)
    write_page(render(args.minutes), args.out)
    return 0


def publish(lines: list[str], command: str, out: str | Path) -> None:
    """Write (and print) a page ending with the command that made it."""
    write_page("\n".join([*lines, f"Command: `{command}`", ""]) + "\n", out)


def write_page(text: str, out: str | Path) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(text)
