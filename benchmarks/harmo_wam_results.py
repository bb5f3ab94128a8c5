"""Regenerate ``results/harmo_wam.md``: HarmoWAM's hard gate vs the soft average vs each expert
alone, on Meta-World mw-easy and on pick-place-v3 (grasping, from mw-mt10), with the gate's
accuracy on held-out demonstrations and the commands behind every number.

    python benchmarks/harmo_wam_results.py                         # tables from the files below
    python benchmarks/harmo_wam_results.py run --suite pick-place  # data, training, evaluation
    python benchmarks/harmo_wam_results.py derive RUN --combine soft --out FOLDER
    python benchmarks/harmo_wam_results.py gate RUN HELD_OUT_ROOT --json FILE

One world model (stage 1) and one stage-2 training per suite: the four variants are the *same
trained weights* combined differently at inference (``combine``: ``gate``, ``soft``,
``predictive``, ``reactive``), so they share the budget exactly. ``derive`` writes a policy folder
with the run's weights and another ``combine``. Long commands run one at a time machine-wide: each
queues on ``/tmp/wamzoo-cpu.lock`` (``flock``) and, once it holds it, also waits for any
``wamzoo train|eval|data`` process started without the lock.

Inputs (nothing typed in by hand; a missing file shows as "not run"):

- ``runs/<recipe>/metrics.csv``, ``runs/<recipe>/train_minutes.txt``: the training runs;
- ``results/harmo_wam/eval-<suite>-<combine>.json``: ``wamzoo eval ... --json``;
- ``results/harmo_wam/gate-<suite>.json``: ``gate`` on held-out demonstrations.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "harmo_wam"
LOCK = "/tmp/wamzoo-cpu.lock"
ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # 2 shared cores: OpenMP threads must not spin against other jobs
MODES = {"gate": "HarmoWAM (hard gate, s > 0.5)", "soft": "soft average", "predictive": "predictive only",
         "reactive": "reactive only"}
HELD_OUT_SEED = 100_000  # demonstration seeds of the held-out sets (training sets use seeds from 0)
SUITES = {
    "mw-easy": {"stage1": "harmo-wam-stage1", "stage2": "harmo-wam", "target": ["--suite", "mw-easy"],
                "episodes": 10, "train_data": None,
                "held_out": ("data/metaworld/harmo-heldout-mw-easy-64", ["--suite", "mw-easy", "--episodes", "4"])},
    "pick-place": {"stage1": "harmo-wam-pp-stage1", "stage2": "harmo-wam-pp", "target": ["--tasks", "pick-place-v3"],
                   "episodes": 20,
                   "train_data": ("data/metaworld/pick-place-64-50ep", ["--tasks", "pick-place-v3", "--episodes", "50"]),
                   "held_out": ("data/metaworld/harmo-heldout-pick-place-64", ["--tasks", "pick-place-v3", "--episodes",
                                                                         "10"])},
}


# -- commands ------------------------------------------------------------------------------------
def folder(suite: str, combine: str) -> str:
    stage2 = SUITES[suite]["stage2"]
    return f"runs/{stage2}" if combine == "gate" else f"runs/{stage2}@{combine}"


def commands(suite: str, minutes: float) -> dict[str, list[list[str]]]:
    s = SUITES[suite]
    cmd: dict[str, list[list[str]]] = {"data": [], "train": [], "derive": [], "eval": [], "gate": []}
    if s["train_data"]:
        root, args = s["train_data"]
        cmd["data"].append(["wamzoo", "data", "metaworld", *args, "--size", "64", "--out", root])
    root, args = s["held_out"]
    cmd["data"].append(["wamzoo", "data", "metaworld", *args, "--seed", str(HELD_OUT_SEED), "--size", "64",
                        "--out", root])
    for r in (s["stage1"], s["stage2"]):
        cmd["train"].append(["wamzoo", "train", r, f"trainer.max_minutes={minutes:g}"])
    for combine in MODES:
        if combine != "gate":
            cmd["derive"].append(["python", "benchmarks/harmo_wam_results.py", "derive", f"runs/{s['stage2']}",
                                  "--combine", combine, "--out", folder(suite, combine)])
        cmd["eval"].append(["wamzoo", "eval", folder(suite, combine), *s["target"], "--episodes", str(s["episodes"]),
                            "--json", f"results/harmo_wam/eval-{suite}-{combine}.json"])
    cmd["gate"].append(["python", "benchmarks/harmo_wam_results.py", "gate", f"runs/{s['stage2']}", root,
                        "--json", f"results/harmo_wam/gate-{suite}.json"])
    return cmd


LONG = ("data", "train", "eval", "gate")


def _shell(cmd: list[str], step: str) -> str:
    env = " ".join(f"{k}={v}" for k, v in ENV.items())
    return f"{env} {'flock ' + LOCK + ' ' if step in LONG else ''}{' '.join(cmd)}"


def _others() -> list[str]:
    """Other ``wamzoo train|eval|data`` processes running now."""
    out = subprocess.run(["pgrep", "-af", "wamzoo (train|eval|data)"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def _run(cmd: list[str], step: str) -> float:
    """Run ``cmd``; a long step queues on the machine-wide lock, then also waits for runs started
    without it. Returns the minutes the command itself took."""
    env = {**os.environ, **ENV}
    if step not in LONG:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        return 0.0
    with open(LOCK, "a") as lock:
        print(f"[harmo_wam] queueing on {LOCK}: {' '.join(cmd)}", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            while _others():
                print(f"[harmo_wam] holding the lock, waiting for: {_others()[0]}", flush=True)
                time.sleep(60)
            print(f"[harmo_wam] {_shell(cmd, step)}", flush=True)
            t0 = time.time()
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)
            return (time.time() - t0) / 60
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_all(suite: str, minutes: float, steps: set[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cmds = commands(suite, minutes)
    for step in ("data", "train", "derive", "eval", "gate"):
        if step not in steps:
            continue
        for cmd in cmds[step]:
            if step == "data" and (ROOT / cmd[-1] / "meta" / "info.json").is_file():
                continue
            took = _run(cmd, step)
            if step == "train":
                (ROOT / "runs" / cmd[2] / "train_minutes.txt").write_text(f"{took:.1f}\n")


# -- derive: the same weights with another combination --------------------------------------------
def derive(run: str, combine: str, out: str) -> Path:
    """Save the policy of ``run`` with ``action_expert.combine = combine`` (weights unchanged)."""
    import copy

    from wamzoo.loading import load_policy

    policy = load_policy(run)
    cfg = copy.deepcopy(policy.config["policy"])
    cfg["action_expert"]["combine"] = combine
    policy.config["policy"] = cfg
    if policy.config.get("recipe"):
        policy.config["recipe"] = {**policy.config["recipe"], "name": f"{policy.config['recipe']['name']}@{combine}"}
    policy.action_expert.combine = combine
    return policy.save_pretrained(ROOT / out)


# -- gate accuracy on held-out demonstrations -----------------------------------------------------
def gate_accuracy(run: str, root: str, batch_size: int = 32, seed: int = 0) -> dict:
    """The gate's decisions (``s > threshold``) against the labels of every window of ``root``."""
    import torch
    from torch.utils.data import DataLoader

    from wamzoo.batch import Batch
    from wamzoo.loading import load_policy
    from wamzoo.plugins import get_plugins

    policy = load_policy(run).eval()
    expert = policy.action_expert
    data = dict(policy.config["recipe"]["data"])
    name = data.pop("name")
    data.update(root=root, episodes=None, num_workers=0, batch_size=batch_size)
    windows = get_plugins().registry.create("data", name, **data).windows()
    loader = DataLoader(windows, batch_size=batch_size, shuffle=False, collate_fn=Batch.collate)
    g = torch.Generator().manual_seed(seed)
    labels, scores, tasks = [], [], []
    for batch in loader:
        out = policy.predict(batch.observation(), generator=g)
        scores.append(out["streams"]["gate"].x[:, 0])
        labels.append(batch.extras[expert.label_key].float())
        tasks.append(batch.task_id)
    s, y, task = torch.cat(scores), torch.cat(labels), torch.cat(tasks)
    pred = (s > expert.threshold).float()
    pos, neg = y == 1, y == 0
    rec = lambda m: float((pred[m] == y[m]).float().mean()) if m.any() else None  # noqa: E731
    per_task = {windows.tasks[i]: rec(task == i) for i in range(len(windows.tasks))}
    return {"run": run, "root": root, "windows": len(y), "accuracy": float((pred == y).float().mean()),
            "recall_contact": rec(pos), "recall_free": rec(neg),
            "balanced_accuracy": (None if not (pos.any() and neg.any()) else (rec(pos) + rec(neg)) / 2),
            "label_positive_rate": float(y.mean()), "predicted_positive_rate": float(pred.mean()),
            "per_task_accuracy": per_task, "seed_range": windows.frames.seed_range, "k": policy.config["recipe"]["data"].get(
                "extras", {}).get("contact", {}).get("k")}


# -- report ---------------------------------------------------------------------------------------
def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _training(recipe: str) -> dict:
    out: dict = {}
    metrics = ROOT / "runs" / recipe / "metrics.csv"
    if metrics.is_file():
        rows = list(csv.DictReader(metrics.open()))
        steps = [int(r["step"]) for r in rows if r.get("train/loss")]
        out["steps"] = max(steps) + 1 if steps else None
        for key in ("video", "action", "react", "gate"):
            vals = [float(r[f"train/loss/{key}"]) for r in rows if r.get(f"train/loss/{key}")]
            if vals:
                out[key] = (sum(vals[:4]) / len(vals[:4]), sum(vals[-4:]) / len(vals[-4:]))
    minutes = ROOT / "runs" / recipe / "train_minutes.txt"
    if minutes.is_file():
        out["minutes"] = float(minutes.read_text())
    return out


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def render(minutes: float) -> str:
    lines = ["# HarmoWAM on Meta-World: hard gate vs soft average vs one expert", "",
             "Generated by `python benchmarks/harmo_wam_results.py` from the files the commands below write;"
             " do not edit by hand.", "",
             "Per suite: one stage-1 world model and one stage-2 training (frozen world model,"
             " L = L_pred + 0.1 L_react + 0.05 L_gate), each at most %g minutes on a shared 2-core CPU. The four"
             " variants are the same trained weights combined differently at inference, so they share the budget"
             " exactly (plugins/harmo_wam/README.md, choice 17)." % minutes, ""]
    for suite, s in SUITES.items():
        evals = {m: _load(OUT / f"eval-{suite}-{m}.json") for m in MODES}
        tasks = next((list(e["tasks"]) for e in evals.values() if e), [])
        host = next((e for e in evals.values() if e), None)
        lines += [f"## {suite}", ""]
        if host:
            lines.append(f"Closed-loop success: {s['episodes']} evaluation layouts per task (seeds"
                         f" {host['seeds'][0]}..{host['seeds'][-1]}, disjoint from training), replan"
                         f" {host['replan']} actions per chunk, at most {host['max_steps']} steps.")
            lines.append("")
        lines.append("| variant | " + " | ".join(tasks or ["tasks"]) + " | mean | policy ms / chunk |")
        lines.append("|---|" + "---:|" * (len(tasks or [1]) + 2))
        for m, label in MODES.items():
            e = evals[m]
            if not e:
                lines.append(f"| {label} | " + " | ".join("not run" for _ in tasks or [1]) + " | not run | - |")
                continue
            cells = [_pct(e["tasks"][t]["success_rate"]) for t in tasks]
            ms = sum(v["policy_latency_ms"] for v in e["tasks"].values()) / len(e["tasks"])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | **{_pct(e['mean_success_rate'])}** | {ms:.0f} |")
        gate = _load(OUT / f"gate-{suite}.json")
        seeds = "%d..%d" % (gate["seed_range"][0], gate["seed_range"][1] - 1) if gate and gate.get("seed_range") else "-"
        lines += ["", "Gate on held-out demonstrations (every window of `%s`, demonstration seeds %s, none used in"
                  " training; labels: 1 within ±%s steps of a gripper change):"
                  % (s["held_out"][0], seeds, gate["k"] if gate else "k"), ""]
        if gate:
            lines.append("| windows | accuracy | balanced accuracy | recall (contact) | recall (free) |"
                         " labels positive | predicted positive |")
            lines.append("|---:|---:|---:|---:|---:|---:|---:|")
            lines.append(f"| {gate['windows']} | {_pct(gate['accuracy'])} | {_pct(gate['balanced_accuracy'])} |"
                         f" {_pct(gate['recall_contact'])} | {_pct(gate['recall_free'])} |"
                         f" {_pct(gate['label_positive_rate'])} | {_pct(gate['predicted_positive_rate'])} |")
        else:
            lines.append("not run")
        lines += ["", "| training run | optimiser steps | minutes | losses (first → last 4 logs) |", "|---|---:|---:|---|"]
        for r in (s["stage1"], s["stage2"]):
            tr = _training(r)
            losses = ", ".join(f"{k} {a:.3f} → {b:.3f}" for k, (a, b) in tr.items() if isinstance(tr[k], tuple))
            lines.append(f"| {r} | {tr.get('steps') or 'not run'} | {tr.get('minutes', '-')} | {losses or '-'} |")
        lines += [""]
    lines += ["## Commands", "", "```bash"]
    for suite in SUITES:
        cmds = commands(suite, minutes)
        for step in ("data", "train", "derive", "eval", "gate"):
            lines += [_shell(c, step) for c in cmds[step]]
    lines += ["python benchmarks/harmo_wam_results.py", "```", "",
              "`python benchmarks/harmo_wam_results.py run --suite SUITE` runs a suite's commands in this order,"
              " each long one holding the lock."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run a suite's commands (data, train, derive, eval, gate)")
    r.add_argument("--suite", choices=tuple(SUITES), required=True)
    r.add_argument("--steps", default="data,train,derive,eval,gate")
    d = sub.add_parser("derive", help="the run's weights with another `combine`, as a policy folder")
    d.add_argument("run")
    d.add_argument("--combine", required=True, choices=tuple(MODES))
    d.add_argument("--out", required=True)
    g = sub.add_parser("gate", help="gate accuracy on held-out demonstrations")
    g.add_argument("run")
    g.add_argument("root")
    g.add_argument("--json", required=True)
    for q in (p, r):
        q.add_argument("--minutes", type=float, default=30.0, help="training budget per stage")
        q.add_argument("--out-md", default=str(ROOT / "results" / "harmo_wam.md"))
    args = p.parse_args(argv)
    if args.cmd == "derive":
        print(derive(args.run, args.combine, args.out))
        return 0
    if args.cmd == "gate":
        rep = gate_accuracy(args.run, args.root)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rep, indent=2))
        print(json.dumps(rep, indent=2))
        return 0
    if args.cmd == "run":
        run_all(args.suite, args.minutes, set(args.steps.split(",")))
    text = render(args.minutes)
    Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_md).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
