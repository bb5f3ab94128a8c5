"""Regenerate ``results/x_wam.md``: X-WAM with Asynchronous Noise Sampling vs the decoupled and the
synchronous schedules on Meta-World mw-easy — success per task, per-chunk latency, RGB and depth
metrics side by side, with the commands that produced every number.

    python benchmarks/x_wam_results.py                       # tables from the JSON files below
    python benchmarks/x_wam_results.py --run                 # first train (1 h each), evaluate, score, time
    python benchmarks/x_wam_results.py --run eval metrics    # only some steps

Inputs (written by the commands listed in the output; every long job holds /tmp/wamzoo-cpu.lock):

- ``results/x_wam/eval-<recipe>.json``: ``wamzoo eval runs/<recipe> --suite mw-easy --episodes 20 --json ...``
- ``results/x_wam/4d-<recipe>.json``: ``wamzoo-x-wam-metrics runs/<recipe> --data <held-out> --json ...``
- ``results/x_wam/latency.json``: ``wamzoo bench latency x-wam-sync x-wam x-wam-decoupled --json ...``
- ``runs/<recipe>/metrics.csv`` and ``runs/<recipe>/train_minutes.txt``: the training runs.

Nothing is typed in by hand: a missing input shows as "not run".
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # recipe -> label
    "x-wam": "ANS (X-WAM)",
    "x-wam-decoupled": "decoupled",
    "x-wam-sync": "synchronous",
}
INFERENCE = {"x-wam": "10 action / 50 video UniPC steps, early stop after 10",
             "x-wam-decoupled": "10 action / 50 video UniPC steps, early stop after 10",
             "x-wam-sync": "50 joint UniPC steps"}
OUT = ROOT / "results" / "x_wam"
HELDOUT = "data/metaworld/mw-easy-64-heldout"
HELDOUT_SEED = 500_000  # training seeds never used by the training dataset (its seed_range starts at 0)
LOCK = ["flock", "/tmp/wamzoo-cpu.lock"]
ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # 2 shared cores: OpenMP threads must not spin against other jobs
EVAL_EPISODES = 20
WINDOWS = 64


def commands(minutes: float) -> dict[str, list[list[str]]]:
    cmd: dict[str, list[list[str]]] = {"train": [], "eval": [], "metrics": []}
    for r in VARIANTS:
        cmd["train"].append(LOCK + ["wamzoo", "train", r, f"trainer.max_minutes={minutes:g}"])
        cmd["eval"].append(LOCK + ["wamzoo", "eval", f"runs/{r}", "--suite", "mw-easy", "--episodes",
                                   str(EVAL_EPISODES), "--json", f"results/x_wam/eval-{r}.json"])
        cmd["metrics"].append(LOCK + ["wamzoo-x-wam-metrics", f"runs/{r}", "--data", HELDOUT, "--windows",
                                      str(WINDOWS), "--json", f"results/x_wam/4d-{r}.json"])
    cmd["heldout"] = [LOCK + ["wamzoo", "data", "metaworld", "--suite", "mw-easy", "--episodes", "4", "--seed",
                              str(HELDOUT_SEED), "--size", "64", "--out", HELDOUT]]
    cmd["latency"] = [LOCK + ["wamzoo", "bench", "latency", "x-wam-sync", "x-wam", "x-wam-decoupled", "--repeats",
                              "20", "--json", "results/x_wam/latency.json"]]
    return cmd


def _shell(cmd: list[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in ENV.items()) + " " + " ".join(cmd)


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
    if "metrics" in only:
        if not (ROOT / HELDOUT / "meta" / "info.json").is_file():
            subprocess.run(cmds["heldout"][0], cwd=ROOT, env=env, check=True)
        for i, _ in enumerate(VARIANTS):
            subprocess.run(cmds["metrics"][i], cwd=ROOT, env=env, check=True)
    if "latency" in only:
        subprocess.run(cmds["latency"][0], cwd=ROOT, env=env, check=True)


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _training(recipe: str) -> dict:
    out = {}
    metrics = ROOT / "runs" / recipe / "metrics.csv"
    if metrics.is_file():
        rows = list(csv.DictReader(metrics.open()))
        for key in ("train/loss", "train/loss/video", "train/loss/action", "train/loss/state", "train/loss/depth"):
            vals = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if vals:
                out["steps"] = max(out.get("steps", 0), max(s for s, _ in vals))
                tail = [v for _, v in vals[-5:]]
                out[key.split("/", 1)[1]] = sum(tail) / len(tail)
    minutes = ROOT / "runs" / recipe / "train_minutes.txt"
    if minutes.is_file():
        out["minutes"] = float(minutes.read_text())
    return out


def _pct(x) -> str:
    return "not run" if x is None else f"{100 * x:.0f}%"


def _num(x, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def render(minutes: float) -> str:
    evals = {r: _load(OUT / f"eval-{r}.json") for r in VARIANTS}
    fours = {r: _load(OUT / f"4d-{r}.json") for r in VARIANTS}
    lat = {row["target"]: row for row in (_load(OUT / "latency.json") or [])}
    tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
    lines = ["# X-WAM on Meta-World mw-easy: ANS vs decoupled vs synchronous noise", "",
             "Generated by `python benchmarks/x_wam_results.py` from the JSON files of the commands below;"
             " do not edit by hand. Same recipe size, data and training budget for the three variants; they differ"
             " only in how training draws the video and action timesteps (and the synchronous variant also"
             " samples all 50 steps jointly at inference).", ""]
    lines += ["## Closed-loop success (mw-easy, %d evaluation layouts per task, seeds disjoint from training)"
              % EVAL_EPISODES, ""]
    lines.append("| task | " + " | ".join(VARIANTS.values()) + " |")
    lines.append("|---|" + "---:|" * len(VARIANTS))
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(_pct(e["tasks"][t]["success_rate"]) if e else "not run"
                                             for e in evals.values()) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{_pct(e['mean_success_rate'])}**" if e else "not run"
                                            for e in evals.values()) + " |")
    if any(e and "mean_success_rate_without_reach" in e for e in evals.values()):
        lines.append("| mean without reach | " + " | ".join(
            _pct(e.get("mean_success_rate_without_reach")) if e else "not run" for e in evals.values()) + " |")
    lines.append("| policy ms / chunk in the eval loop | " + " | ".join(
        f"{sum(v['policy_latency_ms'] for v in e['tasks'].values()) / len(e['tasks']):.0f}" if e else "-"
        for e in evals.values()) + " |")
    lines += ["", "## Per-chunk inference latency (`wamzoo bench latency`, batch 1, same inputs)", ""]
    base = lat.get("x-wam", {}).get("median_ms")
    lines.append("| variant | what runs per chunk | params (M) | median ms | p90 ms | × ANS (async) |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for r, label in VARIANTS.items():
        row = lat.get(r)
        if row is None:
            lines.append(f"| {label} | {INFERENCE[r]} | - | not run | - | - |")
            continue
        ratio = f"{row['median_ms'] / base:.2f}" if base else "-"
        lines.append(f"| {label} | {INFERENCE[r]} | {row['params_m']:.2f} | {row['median_ms']:.1f} |"
                     f" {row['p90_ms']:.1f} | {ratio} |")
    if base and "x-wam-sync" in lat:
        lines += ["", f"synchronous / asynchronous = **{lat['x-wam-sync']['median_ms'] / base:.2f}x** (acceptance"
                      " >= 4x; the paper: 4665 / 1033 ms = 4.5x)."]
    lines += ["", "## 4D prediction quality on held-out episodes (full mode: 50 video steps, depth branch)", ""]
    host4 = next((f for f in fours.values() if f), None)
    if host4:
        lines.append(f"{host4['windows']} windows ({host4['frames']} predicted frames) of `{host4['data']}`"
                     f" (mw-easy, training seeds {HELDOUT_SEED}+ that the training data never used); depth and"
                     f" point clouds within {host4['max_depth']:g} m of the camera; LPIPS: {host4['lpips']}.")
        lines.append("")
    cols = [("PSNR (dB) ↑", "psnr", ".2f"), ("SSIM ↑", "ssim", ".3f"), ("depth AbsRel ↓", "abs_rel", ".3f"),
            ("depth δ1 ↑", "delta1", ".3f"), ("Chamfer (mm) ↓", "chamfer", ".1f")]
    lines.append("| | " + " | ".join(c[0] for c in cols) + " |")
    lines.append("|---|" + "---:|" * len(cols))

    def row4(label, m):
        return f"| {label} | " + " | ".join(_num(m.get(k) * (1000 if k == "chamfer" else 1) if m.get(k) is not None
                                                 else None, f) for _, k, f in cols) + " |"

    for r, label in VARIANTS.items():
        f = fours[r]
        lines.append(row4(label, f["model"]) if f else f"| {label} | " + " | ".join(["not run"] * len(cols)) + " |")
    if host4:
        lines.append(row4("*copy current frame (baseline)*", host4["copy_current_frame"]))
    lines += ["", "## Training (each variant: same recipe and data, at most %g minutes on this CPU)" % minutes, ""]
    lines.append("| variant | optimiser steps | minutes | loss | video | action | state | depth |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r, label in VARIANTS.items():
        tr = _training(r)
        lines.append(f"| {label} | {tr.get('steps', '-')} | {tr.get('minutes', '-')} | "
                     + " | ".join(_num(tr.get(k), ".4f") for k in ("loss", "loss/video", "loss/action", "loss/state",
                                                                      "loss/depth")) + " |")
    lines += ["", "Training losses (mean of the last 5 logs) are not comparable across variants: each draws"
                  " different timesteps, and ANS masks the action/state losses of half the samples.", ""]
    lines += ["## Commands", "", "```bash"]
    cmds = commands(minutes)
    for key in ("train", "eval"):
        lines += [_shell(c) for c in cmds[key]]
    lines.append(_shell(cmds["heldout"][0]))
    lines += [_shell(c) for c in cmds["metrics"]]
    lines.append(_shell(cmds["latency"][0]))
    lines.append("python benchmarks/x_wam_results.py")
    lines += ["```", ""]
    host = next((e for e in evals.values() if e), None)
    if host:
        lines.append(f"Evaluation: replan {host['replan']} actions per chunk, at most {host['max_steps']} steps per"
                     f" episode, seeds {host['seeds'][0]}..{host['seeds'][-1]}.")
    if lat:
        first = next(iter(lat.values()))
        lines.append(f"Latency: {first['repeats']} calls after warm-up, {first['threads']} threads, untrained"
                     " weights of the recipes (latency does not depend on the weights).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs="*", choices=("train", "eval", "metrics", "latency"), default=None,
                   help="run these steps first (no value: all)")
    p.add_argument("--minutes", type=float, default=60.0, help="training budget per variant")
    p.add_argument("--out", default=str(ROOT / "results" / "x_wam.md"))
    args = p.parse_args(argv)
    if args.run is not None:
        run_all(args.minutes, set(args.run or ("train", "eval", "metrics", "latency")))
    text = render(args.minutes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
