"""Regenerate ``results/aha_wam.md``: AHA-WAM and its ablations on Meta-World mw-easy next to Fast-WAM
at the same budget, and the per-chunk latency of Fast-WAM, AHA-WAM's executor (planner context
cached) and AHA-WAM amortised (planner refresh counted), with the commands behind every number.

    python benchmarks/aha_wam_results.py                 # tables from the JSON files below
    python benchmarks/aha_wam_results.py --run           # first train (1 h each), evaluate and time

Inputs (written by the commands listed in the output; each long job holds the machine-wide CPU lock):

- ``results/aha_wam/eval-<recipe>.json``: ``wamzoo eval runs/<recipe> --suite mw-easy --episodes 20 --json ...``
- ``results/aha_wam/eval-aha-wam-history.json``: the ``aha-wam`` weights sampled as the paper describes
  (teacher-forced branch + action history; ``--run export`` writes that policy to ``runs/aha-wam-history``)
- ``results/fast_wam/eval-fast-wam.json``: Fast-WAM's evaluation (``benchmarks/fast_wam_results.py``)
- ``results/aha_wam/latency.json``: ``wamzoo bench latency fast-wam aha-wam`` (the trained small sizes)
- ``results/aha_wam/latency-proportional.json``: the same command with both policies widened to the
  paper's proportions (video expert 3x the action expert's width, 128 tokens per frame; ``PROPORTIONAL``)
- ``runs/<recipe>/metrics.csv`` and ``runs/<recipe>/train_minutes.txt``: the training runs.

Nothing is typed in by hand: a missing input shows as "not run".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_wam_results import ENV, _load, _pct, _training  # noqa: E402  (the same readers as Fast-WAM's page)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "aha_wam"
VARIANTS = {"aha-wam": "AHA-WAM", "aha-wam-no-ovcr": "no OVCR", "aha-wam-no-offset": "no offsets"}
HISTORY = {"aha-wam-history": "AHA-WAM, history sampler"}  # the aha-wam weights, the paper's sampler
EVAL_EPISODES = 20
LOCK = ["flock", "/tmp/wamzoo-cpu.lock"]
#: Both policies at the paper's proportions (Wan2.2-5B 3072 wide with FFN 14336 vs ActionDiT 1024 with
#: FFN 4096, one shared 24 x 128 attention; a frame of ~120 video tokens vs a 32-action chunk).
PROPORTIONAL = ["policy.world_model.dim=384", "policy.world_model.ffn_dim=1792", "policy.world_model.num_heads=6",
                "policy.world_model.head_dim=64", "policy.action_expert.dim=128", "policy.action_expert.ffn_dim=512",
                "policy.action_expert.num_heads=6", "policy.action_expert.head_dim=64", "policy.codec.patch=4"]


def commands(minutes: float) -> dict[str, list[list[str]]]:
    cmd: dict[str, list[list[str]]] = {"train": [], "eval": []}
    for r in VARIANTS:
        cmd["train"].append(LOCK + ["wamzoo", "train", r, f"trainer.max_minutes={minutes:g}"])
        cmd["eval"].append(LOCK + ["wamzoo", "eval", f"runs/{r}", "--suite", "mw-easy", "--episodes",
                                   str(EVAL_EPISODES), "--json", f"results/aha_wam/eval-{r}.json"])
    cmd["export"] = [["python", "benchmarks/aha_wam_results.py", "--run", "export"]]
    cmd["eval"].append(LOCK + ["wamzoo", "eval", "runs/aha-wam-history", "--suite", "mw-easy", "--episodes",
                               str(EVAL_EPISODES), "--json", "results/aha_wam/eval-aha-wam-history.json"])
    bench = LOCK + ["wamzoo", "bench", "latency", "fast-wam", "aha-wam", "--repeats", "30"]
    cmd["latency"] = [bench + ["--json", "results/aha_wam/latency.json"],
                      bench + [x for o in PROPORTIONAL for x in ("--set", o)]
                      + ["--json", "results/aha_wam/latency-proportional.json"]]
    return cmd


def _shell(cmd: list[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in ENV.items()) + " " + " ".join(cmd)


def export_history_sampler() -> None:
    """Save the trained ``aha-wam`` policy with the paper's sampler as ``runs/aha-wam-history``."""
    from wamzoo.loading import load_policy

    policy = load_policy(str(ROOT / "runs" / "aha-wam"))
    for cfg in (policy.config["policy"], (policy.config.get("recipe") or {}).get("policy", {})):
        cfg["action_expert"]["infer_branch"] = "history"
    policy.save_pretrained(ROOT / "runs" / "aha-wam-history", name="aha-wam-history")


def run_all(minutes: float, only: set[str]) -> None:
    env = {**os.environ, **ENV}
    OUT.mkdir(parents=True, exist_ok=True)
    cmds = commands(minutes)
    for i, r in enumerate(VARIANTS):
        if "train" in only:
            t0 = time.time()
            subprocess.run(cmds["train"][i], cwd=ROOT, env=env, check=True)
            (ROOT / "runs" / r / "train_minutes.txt").write_text(f"{(time.time() - t0) / 60:.1f}\n")
        if "eval" in only:
            subprocess.run(cmds["eval"][i], cwd=ROOT, env=env, check=True)
    if "export" in only:
        export_history_sampler()
    if "eval" in only:
        subprocess.run(cmds["eval"][-1], cwd=ROOT, env=env, check=True)
    if "latency" in only:
        for c in cmds["latency"]:
            subprocess.run(c, cwd=ROOT, env=env, check=True)


def _latency_table(rows: list[dict] | None, title: str) -> list[str]:
    lines = [f"### {title}", ""]
    if not rows:
        return lines + ["not run", ""]
    lat = {r["target"]: r for r in rows}
    fast, aha = lat.get("fast-wam"), lat.get("aha-wam")
    lines += ["| what | params (M) | ms per chunk | Fast-WAM / this |", "|---|---:|---:|---:|"]
    if fast:
        lines.append(f"| Fast-WAM: video pass over the current frame + 10 action steps (median) |"
                     f" {fast['params_m']:.2f} | {fast['median_ms']:.1f} | 1.00 |")
    if aha:
        for key, label in (("executor_ms", "AHA-WAM executor, planner context cached: OVCR + 10 steps + history"
                                           " append (median)"),
                           ("amortised_ms", "AHA-WAM amortised: executor (mean) + planner refresh / refresh_every"),
                           ("planner_ms", "AHA-WAM planner, one refresh (median)")):
            lines.append(f"| {label} | {aha['params_m']:.2f} | {aha[key]:.1f} |"
                         f" {aha.get('first_over_' + key, float('nan')):.2f} |")
        lines.append(f"| AHA-WAM per call in the benchmark loop (median; calls back to back, so the background"
                     f" planner mostly runs inside adopting calls) | {aha['params_m']:.2f} | {aha['median_ms']:.1f} |"
                     f" {fast['median_ms'] / aha['median_ms'] if fast else float('nan'):.2f} |")
    return lines + [""]


def render(minutes: float) -> str:
    evals = {"fast-wam": _load(ROOT / "results" / "fast_wam" / "eval-fast-wam.json")}
    evals.update({r: _load(OUT / f"eval-{r}.json") for r in {**VARIANTS, **HISTORY}})
    labels = {"fast-wam": "Fast-WAM", **VARIANTS, **HISTORY}
    tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
    lines = ["# AHA-WAM on Meta-World mw-easy: success next to Fast-WAM, and latency", "",
             "Generated by `python benchmarks/aha_wam_results.py` from the JSON files of the commands below;"
             " do not edit by hand.", ""]
    lines += [f"## Closed-loop success (mw-easy, {EVAL_EPISODES} evaluation layouts per task, seeds disjoint from"
              f" training; every policy trained at most {minutes:g} minutes on this CPU)", ""]
    lines.append("| task | " + " | ".join(labels.values()) + " |")
    lines.append("|---|" + "---:|" * len(labels))
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(_pct(e["tasks"][t]["success_rate"]) if e else "not run"
                                              for e in evals.values()) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{_pct(e['mean_success_rate'])}**" if e else "not run"
                                            for e in evals.values()) + " |")
    lines.append("| policy ms / call in the eval loop | " + " | ".join(
        f"{sum(v['policy_latency_ms'] for v in e['tasks'].values()) / len(e['tasks']):.1f}" if e else "-"
        for e in evals.values()) + " |")
    timed = {r: e for r, e in evals.items() if e and any("timing" in v for v in e["tasks"].values())}
    if timed:
        lines += ["", "Executor and planner measured separately during the evaluation (mean over tasks; the"
                      " planner runs in a background thread that yields to the executor):", "",
                  "| policy | executor ms / chunk | executor Hz | planner ms / refresh | planner Hz | refresh every |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r, e in timed.items():
            tm = [v["timing"] for v in e["tasks"].values() if "timing" in v]
            mean = lambda k: sum(d[k] for d in tm) / len(tm)  # noqa: E731
            lines.append(f"| {labels[r]} | {mean('executor_mean_ms'):.1f} | {mean('executor_hz'):.1f} |"
                         f" {mean('planner_ms'):.1f} | {mean('planner_hz'):.1f} | {mean('refresh_every'):.0f} chunks |")
    lines += ["", "## Per-chunk inference latency (`wamzoo bench latency fast-wam aha-wam`, batch 1, one run)", ""]
    lines += _latency_table(_load(OUT / "latency.json"), "At the trained small sizes (the same experts in both)")
    lines += _latency_table(_load(OUT / "latency-proportional.json"),
                            "Both widened to the paper's proportions (`--set` " + " ".join(PROPORTIONAL) + ")")
    lines += ["The paper: Fast-WAM 190 ms vs AHA-WAM 41.37 ms per chunk = 4.59x.", ""]
    lines += [f"## Training (each recipe at most {minutes:g} minutes on this CPU)", "",
              "| policy | optimiser steps | minutes | final loss (mean of last 5 logs) |", "|---|---:|---:|---:|"]
    for r, label in {"fast-wam": "Fast-WAM", **VARIANTS}.items():
        tr = _training(r)
        lines.append(f"| {label} | {tr.get('steps', '-')} | {tr.get('minutes', '-')} | {tr['final_loss']:.4f} |"
                     if "final_loss" in tr else f"| {label} | - | - | - |")
    lines += ["", "AHA-WAM's loss adds the prior branch's term to Fast-WAM's video and action terms.", "",
              "## Commands", "", "```bash"]
    cmds = commands(minutes)
    lines += [_shell(c) for c in cmds["train"] + cmds["eval"][:-1] + cmds["export"] + cmds["eval"][-1:]
              + cmds["latency"]]
    lines += ["python benchmarks/aha_wam_results.py", "```", ""]
    host = next((e for r, e in evals.items() if e and r in VARIANTS), None)
    if host:
        lines.append(f"Evaluation: replan {host['replan']} actions per chunk (one executor call each), at most"
                     f" {host['max_steps']} steps per episode, seeds {host['seeds'][0]}..{host['seeds'][-1]}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs="*", choices=("train", "eval", "export", "latency"), default=None,
                   help="run these steps first (no value: all)")
    p.add_argument("--minutes", type=float, default=60.0, help="training budget per recipe")
    p.add_argument("--out", default=str(ROOT / "results" / "aha_wam.md"))
    args = p.parse_args(argv)
    if args.run is not None:
        run_all(args.minutes, set(args.run or ("train", "eval", "export", "latency")))
    text = render(args.minutes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
