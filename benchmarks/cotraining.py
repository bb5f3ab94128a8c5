"""Does video co-training pay off where it plausibly can? Fast-WAM against its lambda = 0 twin on MT10 with few demos.

    python benchmarks/cotraining.py                 # the page from the files below
    python benchmarks/cotraining.py --run           # data, both trainings side by side, both evaluations

The regime (``recipes/regimes/``): Meta-World MT10 in one model with 10 scripted demonstrations per task, so
actions are scarce while every demonstration frame still supervises the video expert; both recipes train for
the same wall clock (``--minutes``, one core each, side by side) and are evaluated on the same 20 fresh layouts
per task. The difference of the mean success rates comes with a 95% interval from a paired bootstrap over the
200 layouts (both policies ran each layout), and the layouts only one of them solved are counted.

Inputs: ``results/cotraining/eval-<recipe>.json`` (``wamzoo eval runs/<recipe> --suite mw-mt10 --episodes 20``)
and the runs' ``metrics.csv`` / ``train_minutes.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/cotraining.py"
OUT = "results/cotraining"
WITH, WITHOUT = "fast-wam-mt10-few", "fast-wam-novideo-mt10-few"
DATA = "data/metaworld/mw-mt10-64-10ep"
MINUTES, EPISODES = 40.0, 20


def jobs(minutes: float | None = None) -> list[report.Job]:
    budget = MINUTES if minutes is None else minutes
    data = report.Job("data", ["wamzoo", "data", "metaworld", "--suite", "mw-mt10", "--episodes", "10", "--out", DATA],
                      skip_if=f"{DATA}/meta/info.json")
    return [data, report.train_job(WITH, budget), report.train_job(WITHOUT, budget),
            *[report.eval_job(f"runs/{r}", ["--suite", "mw-mt10"], EPISODES, f"{OUT}/eval-{r}.json")
              for r in (WITH, WITHOUT)]]


def outcomes(rep: dict) -> dict[tuple[str, int], bool]:
    """(task, seed) -> success of an evaluation report."""
    return {(e["task"], int(e["seed"])): bool(e["success"]) for e in rep["episodes"]}


def paired_difference(a: dict, b: dict, resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean success of ``a`` minus ``b`` over the layouts both ran, its 95% paired-bootstrap interval, and how
    many layouts only ``a`` / only ``b`` solved."""
    keys = sorted(set(a) & set(b))
    if not keys:
        raise ValueError("the two evaluations share no layout")
    x = np.array([a[k] for k in keys], float) - np.array([b[k] for k in keys], float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (resamples, len(x)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"layouts": len(keys), "difference": float(x.mean()), "low": float(lo), "high": float(hi),
            "only_a": int((x > 0).sum()), "only_b": int((x < 0).sum())}


def render(root: Path = report.ROOT, minutes: float | None = None) -> tuple[str, dict | None]:
    evals = {r: report.load(root / OUT / f"eval-{r}.json") for r in (WITH, WITHOUT)}
    lines = report.header("Video co-training where it can pay off: MT10, 10 demonstrations per task", SCRIPT,
                          "Fast-WAM with video co-training (lambda = 1) against the same network without it"
                          f" (lambda = 0), {MINUTES if minutes is None else minutes:g} minutes each on one core, side"
                          f" by side, evaluated on the same {EPISODES} fresh layouts per task.")
    tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
    rows = []
    for r, e in evals.items():
        run = report.training(root / "runs" / r)
        steps, mins = run.get("steps"), run.get("minutes")
        rows.append([f"`{r}`", *[report.pct(e["tasks"][t]["success_rate"]) if e else report.NOT_RUN for t in tasks],
                     f"**{report.pct(e['mean_success_rate']) if e else report.NOT_RUN}**", report.num(steps, "d"),
                     report.num(mins, ".0f")])
    lines += report.table(["recipe", *[t.removesuffix("-v3") for t in tasks], "mean", "steps", "minutes"], rows,
                          "l" + "r" * (len(tasks) + 3))
    diff = None
    if all(evals.values()):
        diff = paired_difference(outcomes(evals[WITH]), outcomes(evals[WITHOUT]))
        lines += ["", f"With minus without video co-training: **{100 * diff['difference']:+.1f} points**, 95% interval"
                  f" [{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}] (paired bootstrap over {diff['layouts']}"
                  f" layouts); {diff['only_a']} layouts solved only with it, {diff['only_b']} only without it."]
    lines += ["", *report.commands_section(jobs(minutes), SCRIPT, 2)]
    return "\n".join(lines) + "\n", diff


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs="*", choices=("data", "train", "eval"), default=None,
                   help="run these steps first (no value: all)")
    p.add_argument("--minutes", type=float, default=None, help=f"training budget per recipe (default {MINUTES:g})")
    p.add_argument("--jobs", type=int, default=2, help="trainings side by side (default 2: the same wall clock)")
    args = p.parse_args(argv)
    if args.run is not None:
        report.run_steps(jobs(args.minutes), args.run or ("data", "train", "eval"), n=args.jobs)
    page, diff = render(minutes=args.minutes)
    report.write_page(page, report.ROOT / "results" / "cotraining.md")
    (report.ROOT / "results" / "cotraining.json").write_text(json.dumps({"difference": diff}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
