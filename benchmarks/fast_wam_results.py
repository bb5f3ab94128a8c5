"""Regenerate ``results/fast_wam.md``: Fast-WAM and its variants on Meta-World mw-easy, success per
task and per-chunk latency side by side, with the commands that produced every number.

    python benchmarks/fast_wam_results.py                    # tables from the JSON files below
    python benchmarks/fast_wam_results.py --run --jobs 2     # first train (40 min each, two side by
                                                             # side, one thread each), evaluate, time

Inputs (written by the commands listed in the output; each long job holds /tmp/wamzoo-cpu.lock):

- ``results/fast_wam/eval-<recipe>.json``: ``wamzoo eval runs/<recipe> --suite mw-easy --episodes 20 --json ...``
- ``results/fast_wam/latency.json``: ``wamzoo bench latency fast-wam-idm fast-wam-joint fast-wam
  fast-wam-novideo --json ...``
- ``runs/<recipe>/metrics.csv``, ``hparams.yaml``, ``train_minutes.txt`` and ``train_jobs.txt``: the training runs.

The recipes hold the training budget (``trainer.max_minutes=40``, ``trainer.threads=1``, each
variant's ``max_steps``); ``--minutes`` overrides the minutes. Nothing is typed in by hand: a
missing input shows as "not run".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/fast_wam_results.py"
VARIANTS = {  # recipe -> label
    "fast-wam": "Fast-WAM (skip imagination)",
    "fast-wam-joint": "Joint",
    "fast-wam-idm": "IDM",
    "fast-wam-novideo": "no video co-training (λ=0)",
}
WHAT = {"fast-wam": "1 video pass (current frame) + 10 action steps",
        "fast-wam-joint": "10 joint steps (future video + actions)",
        "fast-wam-idm": "10 video steps, 1 pass over the generated video, 10 action steps",
        "fast-wam-novideo": "as Fast-WAM (same network)"}
LATENCY_ORDER = ("fast-wam-idm", "fast-wam-joint", "fast-wam", "fast-wam-novideo")
STEPS = ("train", "eval", "latency")
RECIPE_MINUTES = 40  # trainer.max_minutes of the recipes
EVAL_EPISODES = 20


def jobs(minutes: float | None = None) -> list[report.Job]:
    """The page's commands; ``minutes`` overrides the recipes' budget."""
    out = [report.train_job(r, minutes) for r in VARIANTS]
    out += [report.eval_job(f"runs/{r}", ["--suite", "mw-easy"], EVAL_EPISODES,
                            f"results/fast_wam/eval-{r}.json") for r in VARIANTS]
    bench = ["wamzoo", "bench", "latency", *LATENCY_ORDER, "--repeats", "30"]
    out += [report.Job("latency", bench + ["--json", "results/fast_wam/latency.json"]),
            report.Job("latency", bench + [x for o in report.PAPER_PROPORTIONS for x in ("--set", o)]
                       + ["--json", "results/fast_wam/latency-proportional.json"])]
    return out


def _ratios(rows: list[dict] | None) -> list[str]:
    idm, joint = report.ratio(rows, "fast-wam-idm", "fast-wam"), report.ratio(rows, "fast-wam-joint", "fast-wam")
    if not idm:
        return []
    return ["", f"IDM / Fast-WAM = **{idm:.1f}x** (the paper: 810 / 190 ms = 4.3x)."
            + (f" Joint / Fast-WAM = {joint:.1f}x (paper 580 / 190 = 3.1x)." if joint else "")]


def render(minutes: float | None = None, root: Path = report.ROOT) -> str:
    out = root / "results" / "fast_wam"
    evals = {label: report.load(out / f"eval-{r}.json") for r, label in VARIANTS.items()}
    rows = report.load(out / "latency.json")
    lines = report.header("Fast-WAM on Meta-World mw-easy: success and latency of the variants", SCRIPT)
    lines += report.success_section(evals, EVAL_EPISODES) + [""]
    lines += report.latency_section(rows, VARIANTS, WHAT, "fast-wam", "Fast-WAM") + _ratios(rows)
    wide = report.load(out / "latency-proportional.json")
    lines += ["", "### The same networks widened to the paper's proportions (`--set` "
              + " ".join(report.PAPER_PROPORTIONS) + ")", ""]
    lines += report.latency_table(wide, VARIANTS, WHAT, "fast-wam", "Fast-WAM") + _ratios(wide)
    budget = RECIPE_MINUTES if minutes is None else minutes
    lines += ["", f"## Training (each variant: same recipe size and data, at most {budget:g} minutes and its own"
                  " max_steps on this CPU)", ""]
    lines += report.training_table(VARIANTS, "results/fast_wam", root)
    lines += ["", "Losses are not comparable across variants (λ_video = 0 drops the video term).", ""]
    lines += report.commands_section(jobs(minutes), SCRIPT, report.side_by_side(VARIANTS, "results/fast_wam", root))
    lines += [s for s in (report.eval_note(evals.values()), report.latency_note(rows)) if s]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return report.main(argv, __doc__, STEPS, "fast_wam.md", jobs, render, None,
                       f"training budget per variant (default: the recipes' {RECIPE_MINUTES})")


if __name__ == "__main__":
    sys.exit(main())
