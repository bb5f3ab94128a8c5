"""Does a paper's mechanism pay off where it plausibly can? A recipe against its ablation twin in one regime.

    python benchmarks/regimes.py cotraining         # the page from the files below
    python benchmarks/regimes.py depth --run        # data, both trainings side by side, both evaluations

Regimes (recipes in ``recipes/regimes/``), each two recipes trained for the same wall clock (``--minutes``,
one core each, side by side) and evaluated on the same fresh layouts:

- ``cotraining``: Fast-WAM's video co-training (lambda = 1 against 0) on Meta-World MT10 in one model with
  10 scripted demonstrations per task, so actions are scarce while every demonstration frame still
  supervises the video expert;
- ``depth``: X-WAM's depth branch as an extra objective under Fast-WAM against Fast-WAM, on reach alone,
  whose goal is a point in 3-D seen only in the images (``results/reach.md``).
- ``ovcr``: AHA-WAM against its no-OVCR ablation, both with the shared training recipe (the leaderboard's
  ``aha-wam-front`` and ``aha-wam-no-ovcr-front`` recipes and runs), evaluated with the
  planner's frames 16 steps behind the present (``wamzoo eval --frame-lag 16``), the lag OVCR is meant to
  bridge (a lag of 4 changed 0-3 of 100 outcomes, ``results/aha_wam.md``); the page adds what the lag costs each
  run against the leaderboard's evaluation of the same run without it.

The difference of the mean success rates comes with a 95% interval from a paired bootstrap over the layouts
(both policies ran each layout), and the layouts only one of them solved are counted.

Inputs: ``results/<regime>/eval-<recipe>.json`` (``wamzoo eval runs/<recipe> ...``) and the runs'
``metrics.csv`` / ``train_minutes.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/regimes.py"


@dataclass(frozen=True)
class Regime:
    title: str
    mechanism: str            # what "with" has and "without" lacks, as the page says it
    with_: str                # the recipe with the mechanism
    without: str              # its ablation twin
    target: tuple[str, ...]   # what is evaluated (``--suite`` / ``--tasks``)
    episodes: int             # layouts per task
    minutes: float            # wall clock per recipe
    data: tuple[str, ...]     # ``wamzoo data metaworld`` arguments that make the dataset
    root: str                 # its folder
    unstressed: str = ""      # the same runs evaluated without the regime's stress (``{recipe}`` in the path)


REGIMES = {
    "cotraining": Regime(
        "Video co-training where it can pay off: MT10, 10 demonstrations per task",
        "video co-training (lambda = 1 against the same network at lambda = 0)",
        "fast-wam-mt10-few", "fast-wam-novideo-mt10-few", ("--suite", "mw-mt10"), 20, 40.0,
        ("--suite", "mw-mt10", "--episodes", "10"), "data/metaworld/mw-mt10-64-10ep"),
    "depth": Regime(
        "X-WAM's depth branch where the goal is hard to see in RGB: reach alone",
        "X-WAM's depth branch (an extra training objective; inference never computes it)",
        "fast-wam-depth-reach", "fast-wam-reach", ("--tasks", "reach-v3"), 200, 20.0,
        ("--suite", "mw-easy", "--episodes", "50", "--cameras", "front,top"), "data/metaworld/mw-easy-64-50ep-front"),
    "ovcr": Regime(
        "AHA-WAM's OVCR where the planner lags the present: its frames a planner refresh (16 steps) late",
        "OVCR (the executor's queries read the present frame and state)",
        "aha-wam-front", "aha-wam-no-ovcr-front", ("--suite", "mw-easy", "--frame-lag", "16"), 20, 40.0,
        ("--suite", "mw-easy", "--episodes", "50", "--cameras", "front,top"), "data/metaworld/mw-easy-64-50ep-front",
        unstressed="results/leaderboard/eval-{recipe}.json"),
}


def jobs(regime: Regime, minutes: float | None = None, name: str = "") -> list[report.Job]:
    budget = regime.minutes if minutes is None else minutes
    data = report.Job("data", ["wamzoo", "data", "metaworld", *regime.data, "--out", regime.root],
                      skip_if=f"{regime.root}/meta/info.json")
    return [data, report.train_job(regime.with_, budget), report.train_job(regime.without, budget),
            *[report.eval_job(f"runs/{r}", list(regime.target), regime.episodes, f"results/{name}/eval-{r}.json")
              for r in (regime.with_, regime.without)]]


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


def render(name: str, root: Path = report.ROOT, minutes: float | None = None) -> tuple[str, dict | None]:
    regime = REGIMES[name]
    evals = {r: report.load(root / "results" / name / f"eval-{r}.json") for r in (regime.with_, regime.without)}
    budget = regime.minutes if minutes is None else minutes
    lines = report.header(regime.title, f"{SCRIPT} {name}",
                          f"`{regime.with_}` with {regime.mechanism} against `{regime.without}` without it,"
                          f" {budget:g} minutes each on one core, side by side, evaluated on the same"
                          f" {regime.episodes} fresh layouts per task.")
    tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
    rows, capped = [], []
    for r, e in evals.items():
        run = report.recorded_training(root / "runs" / r, root / "results" / name / f"train-{r}.json")
        steps, mins = run.get("steps"), run.get("minutes")
        if steps is not None and mins is not None and mins < 0.95 * budget:
            capped.append(f"`{r}` after {mins:.0f} minutes ({steps} steps)")
        rows.append([f"`{r}`", *[report.pct(e["tasks"][t]["success_rate"]) if e else report.NOT_RUN for t in tasks],
                     f"**{report.pct(e['mean_success_rate']) if e else report.NOT_RUN}**", report.num(steps, "d"),
                     report.num(mins, ".0f")])
    lines += report.table(["recipe", *[t.removesuffix("-v3") for t in tasks], "mean", "steps", "minutes"], rows,
                          "l" + "r" * (len(tasks) + 3))
    diff = None
    if all(evals.values()):
        diff = paired_difference(outcomes(evals[regime.with_]), outcomes(evals[regime.without]))
        lines += ["", f"With minus without: **{100 * diff['difference']:+.1f} points**, 95% interval"
                  f" [{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}] (paired bootstrap over {diff['layouts']}"
                  f" layouts); {diff['only_a']} layouts solved only with it, {diff['only_b']} only without it."]
    if capped:
        lines += ["", f"Stopped at their recipe's step cap (`trainer.max_steps`) before the {budget:g} minutes: "
                  + ", ".join(capped) + "; the comparison is then at equal steps, not equal wall clock."]
    lines += _stress_cost(regime, evals, root)
    lines += ["", *report.commands_section(jobs(regime, minutes, name), f"{SCRIPT} {name}", 2)]
    return "\n".join(lines) + "\n", diff


def _stress_cost(regime: Regime, evals: dict, root: Path) -> list[str]:
    """What the regime's stress costs each run: its evaluation against the same run's unstressed one (if any)."""
    if not regime.unstressed:
        return []
    parts = []
    for r, e in evals.items():
        calm = report.load(root / regime.unstressed.format(recipe=r))
        if e and calm:
            d = paired_difference(outcomes(e), outcomes(calm))
            parts.append(f"`{r}` {report.pct(calm['mean_success_rate'])} unstressed, {100 * d['difference']:+.1f}"
                         f" [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] under it")
    return ["", "What the stress costs each run (the same run's evaluation in `"
            + regime.unstressed.format(recipe="RECIPE") + "`, paired): " + "; ".join(parts) + "."] if parts else []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("regime", choices=sorted(REGIMES))
    p.add_argument("--run", nargs="*", choices=("data", "train", "eval"), default=None,
                   help="run these steps first (no value: all)")
    p.add_argument("--minutes", type=float, default=None, help="training budget per recipe (default: the regime's)")
    p.add_argument("--jobs", type=int, default=2, help="trainings side by side (default 2: the same wall clock)")
    args = p.parse_args(argv)
    regime = REGIMES[args.regime]
    if args.run is not None:
        report.run_steps(jobs(regime, args.minutes, args.regime), args.run or ("data", "train", "eval"), n=args.jobs)
    page, diff = render(args.regime, minutes=args.minutes)
    report.write_page(page, report.ROOT / "results" / f"{args.regime}.md")
    (report.ROOT / "results" / f"{args.regime}.json").write_text(json.dumps({"difference": diff}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
