"""Regenerate ``results/x_wam.md``: X-WAM with Asynchronous Noise Sampling vs the decoupled and the
synchronous schedules on Meta-World mw-easy — success per task, per-chunk latency, RGB and depth
metrics side by side, with the commands that produced every number.

    python benchmarks/x_wam_results.py                       # tables from the JSON files below
    python benchmarks/x_wam_results.py --run                 # first train (30 min each), evaluate, score, time
    python benchmarks/x_wam_results.py --run eval metrics    # only some steps

Inputs (written by the commands listed in the output; every long job holds /tmp/wamzoo-cpu.lock):

- ``results/x_wam/eval-<recipe>.json``: ``wamzoo eval runs/<recipe> --suite mw-easy --episodes 20 --json ...``
- ``results/x_wam/4d-<recipe>.json``: ``wamzoo-x-wam-metrics runs/<recipe> --data <held-out> --json ...``
- ``results/x_wam/latency.json``: ``wamzoo bench latency x-wam-sync x-wam x-wam-decoupled --json ...``, and
  ``latency-finer.json``: the same with ``--set policy.codec.patch=4`` (``FINER``)
- ``runs/<recipe>/metrics.csv``, ``hparams.yaml``, ``train_minutes.txt`` and ``train_jobs.txt``: the training runs.

Nothing is typed in by hand: a missing input shows as "not run".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/x_wam_results.py"
VARIANTS = {"x-wam": "ANS (X-WAM)", "x-wam-decoupled": "decoupled", "x-wam-sync": "synchronous"}  # recipe -> label
INFERENCE = {"x-wam": "10 action / 50 video UniPC steps, early stop after 10",
             "x-wam-decoupled": "10 action / 50 video UniPC steps, early stop after 10",
             "x-wam-sync": "50 joint UniPC steps"}
STEPS = ("train", "eval", "metrics", "latency")
#: The paper's frames carry ~120-390 tokens each (Wan2.2 VAE, 2x2 patches); the small recipe's 32. Finer
#: patches make video the larger share of a denoising step, as it is in the paper.
FINER = ["policy.codec.patch=4"]
HELDOUT = "data/metaworld/mw-easy-64-heldout"
HELDOUT_SEED = 500_000  # training seeds never used by the training dataset (its seed_range starts at 0)
#: evaluation layouts per task; synchronous inference (50 joint steps per chunk) costs ~5x the time
EVAL_EPISODES = {"x-wam": 10, "x-wam-decoupled": 10, "x-wam-sync": 2}
RECIPE_MINUTES = 30  # trainer.max_minutes of the recipes (one thread each, two trainings side by side)
WINDOWS = 64
LOSSES = {"train/loss": "loss", "train/loss/video": "video", "train/loss/action": "action",
          "train/loss/state": "state", "train/loss/depth": "depth"}
#: 4D metrics: column, key, format (Chamfer distances are stored in metres, shown in millimetres).
METRICS = [("PSNR (dB) ↑", "psnr", ".2f"), ("SSIM ↑", "ssim", ".3f"), ("depth AbsRel ↓", "abs_rel", ".3f"),
           ("depth δ1 ↑", "delta1", ".3f"), ("Chamfer (mm) ↓", "chamfer", ".1f")]


def jobs(minutes: float | None = None) -> list[report.Job]:
    """The page's commands; ``minutes`` overrides the recipes' budget."""
    out = [report.train_job(r, minutes) for r in VARIANTS]
    out += [report.eval_job(f"runs/{r}", ["--suite", "mw-easy"], EVAL_EPISODES[r], f"results/x_wam/eval-{r}.json")
            for r in VARIANTS]
    out.append(report.Job("metrics", ["wamzoo", "data", "metaworld", "--suite", "mw-easy", "--episodes", "4", "--seed",
                                      str(HELDOUT_SEED), "--size", "64", "--out", HELDOUT],
                          skip_if=f"{HELDOUT}/meta/info.json"))
    out += [report.Job("metrics", ["wamzoo-x-wam-metrics", f"runs/{r}", "--data", HELDOUT, "--windows", str(WINDOWS),
                                   "--json", f"results/x_wam/4d-{r}.json"]) for r in VARIANTS]
    bench = ["wamzoo", "bench", "latency", "x-wam-sync", "x-wam", "x-wam-decoupled", "--repeats", "20"]
    out += [report.Job("latency", bench + ["--json", "results/x_wam/latency.json"]),
            report.Job("latency", bench + [x for o in FINER for x in ("--set", o)]
                       + ["--json", "results/x_wam/latency-finer.json"])]
    return out


def _metrics_row(label: str, m: dict) -> list[str]:
    return [label] + [report.num(None if m.get(k) is None else m[k] * (1000 if k == "chamfer" else 1), f)
                      for _, k, f in METRICS]


def _ratio(rows: list[dict] | None) -> list[str]:
    sync = report.ratio(rows, "x-wam-sync", "x-wam")
    return ["", f"synchronous / asynchronous = **{sync:.2f}x** (acceptance >= 4x; the paper: 4665 / 1033 ms = 4.5x)."
            ] if sync else []


def render(minutes: float | None = None, root: Path = report.ROOT) -> str:
    out = root / "results" / "x_wam"
    evals = {label: report.load(out / f"eval-{r}.json") for r, label in VARIANTS.items()}
    fours = {r: report.load(out / f"4d-{r}.json") for r in VARIANTS}
    rows = report.load(out / "latency.json")
    lines = report.header("X-WAM on Meta-World mw-easy: ANS vs decoupled vs synchronous noise", SCRIPT,
                          "Same recipe size, data and training budget for the three variants; they differ only in"
                          " how training draws the video and action timesteps (and the synchronous variant also"
                          " samples all 50 steps jointly at inference).")
    episodes = ", ".join(f"{VARIANTS[r]} {n}" for r, n in EVAL_EPISODES.items())
    lines += report.success_section(evals, episodes) + [""]
    lines += report.latency_section(rows, VARIANTS, INFERENCE, "x-wam", "ANS (async)") + _ratio(rows)
    finer = report.load(out / "latency-finer.json")
    lines += ["", "### With 4x the video tokens per frame (`--set " + " ".join(FINER) + "`)", ""]
    lines += report.latency_table(finer, VARIANTS, INFERENCE, "x-wam", "ANS (async)") + _ratio(finer)
    lines += ["", "## 4D prediction quality on held-out episodes (full mode: 50 video steps, depth branch)", ""]
    host4 = next((f for f in fours.values() if f), None)
    if host4:
        lines += [f"{host4['windows']} windows ({host4['frames']} predicted frames) of `{host4['data']}`"
                  f" (mw-easy, training seeds {HELDOUT_SEED}+ that the training data never used); depth and"
                  f" point clouds within {host4['max_depth']:g} m of the camera; LPIPS: {host4['lpips']}.", ""]
    table = [_metrics_row(label, fours[r]["model"]) if fours[r] else [label] + [report.NOT_RUN] * len(METRICS)
             for r, label in VARIANTS.items()]
    if host4:
        table.append(_metrics_row("*copy current frame (baseline)*", host4["copy_current_frame"]))
    lines += report.table(["", *(c for c, _, _ in METRICS)], table, "l" + "r" * len(METRICS))
    if host4:
        lines += ["", "The baseline repeats the observed frame and its depth; where a model's row is worse, its video"
                  " stream is not yet trained far enough for 50-step samples to beat a static scene (compare the"
                  " video loss under Training: flow-matching velocity MSE, about 1.2 for an untrained model)."]
    lines += ["", f"## Training (each variant: same recipe and data, at most {RECIPE_MINUTES if minutes is None else minutes:g}"
                  " minutes on one core of this 2-core CPU)", ""]
    lines += report.training_table(VARIANTS, "results/x_wam", root, LOSSES)
    lines += ["", "Training losses (mean of the last 5 logs) are not comparable across variants: each draws"
                  " different timesteps, and ANS masks the action/state losses of half the samples.", ""]
    lines += report.commands_section(jobs(minutes), SCRIPT, report.side_by_side(VARIANTS, "results/x_wam", root))
    lines += [s for s in (report.eval_note(evals.values()), report.latency_note(rows)) if s]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return report.main(argv, __doc__, STEPS, "x_wam.md", jobs, render, None,
                       f"training budget per variant (default: the recipes' {RECIPE_MINUTES})")


if __name__ == "__main__":
    sys.exit(main())
