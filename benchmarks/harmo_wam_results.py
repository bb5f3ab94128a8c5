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
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/harmo_wam_results.py"
OUT = "results/harmo_wam"  # result files and training records (report.recorded_training)
MODES = {"gate": "HarmoWAM (hard gate, s > 0.5)", "soft": "soft average", "predictive": "predictive only",
         "reactive": "reactive only"}
HELD_OUT_SEED = 100_000  # demonstration seeds of the held-out sets (training sets use seeds from 0)
SUITES = {
    "mw-easy": {"stage1": "harmo-wam-stage1", "stage2": "harmo-wam", "target": ["--suite", "mw-easy"],
                "episodes": 6, "train_data": None,
                "held_out": ("data/metaworld/harmo-heldout-mw-easy-64", ["--suite", "mw-easy", "--episodes", "4"])},
    "pick-place": {"stage1": "harmo-wam-pp-stage1", "stage2": "harmo-wam-pp", "target": ["--tasks", "pick-place-v3"],
                   "episodes": 10,
                   "train_data": ("data/metaworld/pick-place-64-50ep", ["--tasks", "pick-place-v3", "--episodes", "50"]),
                   "held_out": ("data/metaworld/harmo-heldout-pick-place-64", ["--tasks", "pick-place-v3", "--episodes",
                                                                         "10"])},
}
STAGE_MINUTES = (12, 15)  # trainer.max_minutes of the recipes' stage 1 and stage 2 (parts/stage*.yaml)
STEPS = ("data", "train", "derive", "eval", "gate")
LOSSES = {f"train/loss/{k}": k for k in ("video", "action", "react", "gate")}


# -- commands ------------------------------------------------------------------------------------
def folder(suite: str, combine: str) -> str:
    stage2 = SUITES[suite]["stage2"]
    return f"runs/{stage2}" if combine == "gate" else f"runs/{stage2}@{combine}"


def _data(root: str, args: list[str]) -> report.Job:
    return report.Job("data", ["wamzoo", "data", "metaworld", *args, "--size", "64", "--out", root],
                      skip_if=f"{root}/meta/info.json")


def jobs(suite: str, minutes: float | None = None) -> list[report.Job]:
    """A suite's commands in the order they run: data, both trainings, derived policies, evaluations, gate."""
    s = SUITES[suite]
    out = [_data(*s["train_data"])] if s["train_data"] else []
    held_out, args = s["held_out"]
    out.append(_data(held_out, [*args, "--seed", str(HELD_OUT_SEED)]))
    out += [report.train_job(r, minutes) for r in (s["stage1"], s["stage2"])]
    out += [report.Job("derive", ["python", SCRIPT, "derive", f"runs/{s['stage2']}", "--combine", combine, "--out",
                                  folder(suite, combine)], lock=False) for combine in MODES if combine != "gate"]
    out += [report.eval_job(folder(suite, combine), s["target"], s["episodes"],
                            f"results/harmo_wam/eval-{suite}-{combine}.json") for combine in MODES]
    out.append(report.Job("gate", ["python", SCRIPT, "gate", f"runs/{s['stage2']}", held_out, "--json",
                                   f"results/harmo_wam/gate-{suite}.json"]))
    return out


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
    return policy.save_pretrained(report.ROOT / out, force=True)


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
    module = get_plugins().registry.create("data", name, **data)
    windows = module.windows()
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
            "per_task_accuracy": per_task, "seed_range": module.describe().seed_range, "k": policy.config["recipe"]["data"].get(
                "extras", {}).get("contact", {}).get("k")}


# -- report ---------------------------------------------------------------------------------------
def _gate_table(gate: dict | None) -> list[str]:
    if not gate:
        return [report.NOT_RUN]
    pct = lambda k: report.pct(gate[k], "n/a")  # noqa: E731  (None: no window of that class)
    return report.table(["windows", "accuracy", "balanced accuracy", "recall (contact)", "recall (free)",
                         "labels positive", "predicted positive"],
                        [[gate["windows"], *(pct(k) for k in ("accuracy", "balanced_accuracy", "recall_contact",
                                                              "recall_free", "label_positive_rate",
                                                              "predicted_positive_rate"))]], "rrrrrrr")


def render(minutes: float | None = None, root: Path = report.ROOT) -> str:
    out = root / "results" / "harmo_wam"
    lines = report.header("HarmoWAM on Meta-World: hard gate vs soft average vs one expert", SCRIPT)
    together = report.side_by_side([r for s in SUITES.values() for r in (s["stage1"], s["stage2"])], OUT, root)
    budget = ("at most %g minutes each" % minutes if minutes is not None else
              "stage 1 at most %g and stage 2 at most %g minutes" % STAGE_MINUTES)
    lines += ["Per suite: one stage-1 world model and one stage-2 training (frozen world model,"
              " L = L_pred + 0.1 L_react + 0.05 L_gate), %s on one core of a 2-core CPU%s. The four variants are the same trained weights combined differently at inference, so they"
              " share the budget exactly (plugins/harmo_wam/README.md, choice 17)."
              % (budget, "" if together < 2 else f" ({together} trainings side by side)"), ""]
    for suite, s in SUITES.items():
        evals = {label: report.load(out / f"eval-{suite}-{m}.json") for m, label in MODES.items()}
        lines += [f"## {suite}", "", f"Closed-loop success: {s['episodes']} evaluation layouts per task, seeds"
                  " disjoint from training." + (" " + report.eval_note(evals.values())).rstrip(), ""]
        lines += report.success_table(evals)
        gate = report.load(out / f"gate-{suite}.json")
        seeds = ("%d..%d" % (gate["seed_range"][0], gate["seed_range"][1] - 1) if gate and gate.get("seed_range")
                 else "-")
        lines += ["", "Gate on held-out demonstrations (every window of `%s`, demonstration seeds %s, none used in"
                  " training; labels: 1 within ±%s steps of a gripper change):"
                  % (s["held_out"][0], seeds, gate["k"] if gate else "k"), ""]
        lines += _gate_table(gate)
        if gate and gate["label_positive_rate"] == 0:
            lines += ["", "No held-out window lies near a gripper change (these tasks' demonstrations never change the"
                      " grab effort), so the gate only ever sees the free-motion label and routes every sample to"
                      " the predictive expert: here the hard gate and the soft average act as the predictive"
                      " expert alone."]
        lines += [""] + report.training_table({r: r for r in (s["stage1"], s["stage2"])}, OUT, root, LOSSES, n=4,
                                              trend=True) + [""]
    lines += report.commands_section([j for suite in SUITES for j in jobs(suite, minutes)], SCRIPT)
    lines += [f"`python {SCRIPT} run --suite SUITE` runs a suite's commands in this order, each long one holding"
              " the lock (and waiting for any `wamzoo train|eval|data` started without it); data already there is"
              " not made again."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run a suite's commands (data, train, derive, eval, gate)")
    r.add_argument("--suite", choices=tuple(SUITES), required=True)
    r.add_argument("--steps", default=",".join(STEPS))
    d = sub.add_parser("derive", help="the run's weights with another `combine`, as a policy folder")
    d.add_argument("run")
    d.add_argument("--combine", required=True, choices=tuple(MODES))
    d.add_argument("--out", required=True)
    g = sub.add_parser("gate", help="gate accuracy on held-out demonstrations")
    g.add_argument("run")
    g.add_argument("root")
    g.add_argument("--json", required=True)
    for q in (p, r):
        q.add_argument("--minutes", type=float, default=None,
                       help="training budget per stage (default: the recipes', %g and %g)" % STAGE_MINUTES)
        q.add_argument("--out-md", default=str(report.ROOT / "results" / "harmo_wam.md"))
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
        report.run_steps(jobs(args.suite, args.minutes), args.steps.split(","))
    report.write_page(render(args.minutes), args.out_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
