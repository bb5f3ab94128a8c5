"""Regenerate ``results/leaderboard.md`` and ``results/leaderboard.json``: every composition on one board.

The four papers' default recipes, their ablations, the cross-paper mixes (``recipes/mixes``) and two
baselines made from the same parts (``fast-wam-novideo``: no video co-training; ``bc``: no world
model) and the training-recipe rows (``recipes/training``: the flagship with one training choice
changed against the row its recipe's ``defaults`` name; rows with a ``run`` evaluate another row's run
differently, e.g. more or fewer actions per chunk), each trained at the same CPU budget on Meta-World mw-easy
(one thread, ``--minutes`` each, two trainings side by side on the 2-core machine) and evaluated on
20 layouts per task with seeds disjoint from training: per-task success, mean, per-chunk latency,
parameters, steps, minutes.

    python benchmarks/leaderboard.py                      # the page from the files below
    python benchmarks/leaderboard.py --run --jobs 2       # train, evaluate and time everything first
    python benchmarks/leaderboard.py --run train eval --rows fast-wam-ans bc   # some rows only

Inputs (nothing typed in by hand; a missing one shows as "not run"):

- ``results/leaderboard/eval-<row>.json``: ``wamzoo eval runs/<row> --suite mw-easy --episodes 20 --json ...``
  (each file records the command that wrote it); while only its journal ``eval-<row>.json.partial`` exists
  (an evaluation under way or interrupted, :mod:`wamzoo.journal`) the row says how many episodes it holds;
- ``results/leaderboard/latency.json``: ``wamzoo bench latency <every row's recipe> --json ...`` (calls
  interleaved; latency and size do not depend on the weights, so the recipes are timed untrained);
- ``runs/<run>/metrics.csv``, ``train_minutes.txt``: the trainings (steps and minutes), kept in
  ``results/leaderboard/train-<run>.json`` for when the run folder is gone (``runs/`` is not committed).

Rows whose paper page already holds an evaluation of the same recipe at the same budget (Fast-WAM's and
AHA-WAM's pages: 40 minutes, one core, two side by side) read it from there (``FROM_PAGES``) until their
leaderboard file exists; the page says which. X-WAM's (30 minutes) and HarmoWAM's (12 + 15) pages were
trained at other budgets and are not borrowed.

HarmoWAM's rows train in two stages: the world model (stage 1, half the budget) then the gated experts on
it (stage 2, the other half); ``harmo-wam-on-fast-wam`` takes the ``fast-wam`` row's run as its stage 1
(the mix's point), so only its stage 2 counts against its budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from wamzoo.journal import read as read_journal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import regimes  # noqa: E402
import report  # noqa: E402

SCRIPT = "benchmarks/leaderboard.py"
OUT = "results/leaderboard"
BUDGET = 40.0  # minutes of one core per row (the Fast-WAM and AHA-WAM recipes' own budget)
EPISODES = 20
STEPS = ("train", "eval", "latency")


@dataclass(frozen=True)
class Row:
    name: str      # the recipe evaluated (its run folder is runs/<name>)
    group: str     # paper, ablation, mix, baseline
    paper: str     # where its parts come from
    stage1: str | None = None  # a recipe trained first (HarmoWAM); None: one stage
    run: str | None = None     # another row's run, evaluated differently (``eval_args``); None: its own
    eval_args: tuple[str, ...] = ()
    minutes: float | None = None  # the row's own budget (a shipped policy's hour); None: the board's

    @property
    def folder(self) -> str:
        return self.run or self.name


ROWS = [
    Row("fast-wam", "paper", "Fast-WAM"),
    Row("x-wam", "paper", "X-WAM"),
    Row("aha-wam", "paper", "AHA-WAM"),
    Row("harmo-wam", "paper", "HarmoWAM", stage1="harmo-wam-stage1"),
    Row("fast-wam-joint", "ablation", "Fast-WAM"),
    Row("fast-wam-idm", "ablation", "Fast-WAM"),
    Row("x-wam-decoupled", "ablation", "X-WAM"),
    Row("x-wam-sync", "ablation", "X-WAM"),
    Row("aha-wam-no-ovcr", "ablation", "AHA-WAM"),
    Row("aha-wam-no-offset", "ablation", "AHA-WAM"),
    Row("harmo-wam-average", "ablation", "HarmoWAM", stage1="harmo-wam-stage1"),
    Row("harmo-wam-predictive", "ablation", "HarmoWAM", stage1="harmo-wam-stage1"),
    Row("harmo-wam-reactive", "ablation", "HarmoWAM", stage1="harmo-wam-stage1"),
    Row("fast-wam-ans", "mix", "Fast-WAM + X-WAM"),
    Row("fast-wam-depth", "mix", "X-WAM + Fast-WAM"),
    Row("x-wam-action-dit", "mix", "X-WAM + Fast-WAM"),
    Row("harmo-wam-on-fast-wam", "mix", "HarmoWAM + Fast-WAM", stage1="fast-wam"),
    Row("aha-wam-on-fast-wam", "mix", "AHA-WAM + Fast-WAM"),
    Row("fast-wam-novideo", "baseline", "no video co-training"),
    Row("bc", "baseline", "no world model"),
    Row("fast-wam-ema", "training", "Fast-WAM + weights' moving average"),
    Row("fast-wam-shift", "training", "Fast-WAM + random shift"),
    Row("fast-wam-tail", "training", "Fast-WAM + chunks trained to their end"),
    Row("fast-wam-front", "training", "fast-wam-budget seen from the front (cameras front + top)"),
    Row("fast-wam-budget", "training", "fast-wam-tail, learning rate decayed over the minutes, not the steps"),
    Row("fast-wam-novideo-budget", "training", "fast-wam-budget without video co-training (λ = 0)"),
    Row("fast-wam-balanced", "training", "fast-wam-budget drawing every task equally often"),
    Row("fast-wam-dart", "training", "fast-wam-budget on demonstrations with the expert perturbed (DART)"),
    Row("fast-wam-keypoints", "training", "fast-wam-budget + 16 spatial-softmax keypoints per view in the context"),
    Row("aha-wam-keypoints", "training", "AHA-WAM + 16 spatial-softmax keypoints per view in the context"),
    Row("aha-wam-budget", "training", "AHA-WAM + chunks trained to their end, rate decayed over the minutes"),
    Row("x-wam-budget", "training", "X-WAM + chunks trained to their end, rate decayed over the minutes"),
    Row("harmo-wam-budget", "training", "HarmoWAM + chunks trained to their end, rate decayed over the minutes",
        stage1="harmo-wam-budget-stage1"),
    Row("aha-wam-front", "training", "AHA-WAM with the shared recipe: chunks to their end, rate over the minutes, front + top"),
    Row("aha-wam-no-ovcr-front", "training", "aha-wam-front without OVCR"),
    Row("x-wam-front", "training", "X-WAM with the shared recipe: chunks to their end, rate over the minutes, front + top"),
    Row("harmo-wam-front", "training", "HarmoWAM with the shared recipe: chunks to their end, rate over the minutes, front + top",
        stage1="harmo-wam-front-stage1"),
    Row("fast-wam-front-hour", "training", "fast-wam-front trained for 60 minutes (40)", minutes=60),
    Row("aha-wam-front-hour", "training", "aha-wam-front trained for 60 minutes, step cap raised (40, 800 steps)",
        minutes=60),
    Row("fast-wam-front-hour-2cores", "training",
        "fast-wam-front-hour on both cores (two threads; evaluations beside it for its first 12 minutes)", minutes=60),
    Row("fast-wam-front-hour-2cores-ensemble", "training", "fast-wam-front-hour-2cores, temporal ensembling",
        run="fast-wam-front-hour-2cores", eval_args=("--ensemble", "0.01")),
    Row("fast-wam-front-hour-ensemble", "training", "fast-wam-front-hour, temporal ensembling (as `fast-wam-ensemble`)",
        run="fast-wam-front-hour", eval_args=("--ensemble", "0.01")),
    Row("aha-wam-front-hour-ensemble", "training", "aha-wam-front-hour, temporal ensembling (as `fast-wam-ensemble`)",
        run="aha-wam-front-hour", eval_args=("--ensemble", "0.01")),
    Row("fast-wam-front-hour-batch16", "training", "fast-wam-front-hour with batch 16 (32): 1.75x the steps",
        minutes=60),
    Row("fast-wam-front-hour-batch16-ensemble", "training", "fast-wam-front-hour-batch16, temporal ensembling",
        run="fast-wam-front-hour-batch16", eval_args=("--ensemble", "0.01")),
    Row("fast-wam-front-hour-balanced", "training", "fast-wam-front-hour drawing every task equally often",
        minutes=60),
    Row("fast-wam-front-hour-balanced-ensemble", "training", "fast-wam-front-hour-balanced, temporal ensembling",
        run="fast-wam-front-hour-balanced", eval_args=("--ensemble", "0.01")),
    Row("x-wam-front-hour", "training", "x-wam-front trained for 60 minutes, step cap raised (40, 700 steps)",
        minutes=60),
    Row("harmo-wam-front-hour", "training", "harmo-wam-front's stage 2 trained for 40 minutes (20 + 40; 20 + 20)",
        stage1="harmo-wam-front-stage1", minutes=60),
    Row("fast-wam-front-hour-ddp", "training",
        "fast-wam-front-hour as two data-parallel processes, one per core (16 + 16 samples a step)", minutes=60),
    Row("fast-wam-front-hour-ddp-ensemble", "training", "fast-wam-front-hour-ddp, temporal ensembling",
        run="fast-wam-front-hour-ddp", eval_args=("--ensemble", "0.01")),
    Row("fast-wam-front-close", "training", "fast-wam-front seen 1.3x closer from the front (cameras front-close + top; beside the test suite)"),
    Row("fast-wam-front-hour-tips", "training",
        "fast-wam-front-hour, reach's expert aiming the fingertips at the goal (Meta-World's: the wrist)", minutes=60),
    Row("fast-wam-front-hour-tips-ensemble", "training", "fast-wam-front-hour-tips, temporal ensembling",
        run="fast-wam-front-hour-tips", eval_args=("--ensemble", "0.01")),
    Row("fast-wam-front-hour-tips-settle", "training",
        "fast-wam-front-hour-tips on episodes that go on 24 steps past the first success", minutes=60),
    Row("fast-wam-front-hour-tips-settle-ensemble", "training", "fast-wam-front-hour-tips-settle, temporal ensembling",
        run="fast-wam-front-hour-tips-settle", eval_args=("--ensemble", "0.01")),
    Row("aha-wam-front-hour-tips", "training",
        "aha-wam-front-hour, reach's expert aiming the fingertips at the goal (beside the test suite and two evaluations for its first 12 minutes, a low-priority test suite for its last 16)",
        minutes=60),
    Row("x-wam-front-tips", "training", "x-wam-front, reach's expert aiming the fingertips at the goal"),
    Row("aha-wam-front-hour-tips-start", "training",
        "aha-wam-front-hour-tips, history before an episode's start hidden in training as at inference (beside an X-WAM hour for 48 of its minutes)", minutes=60),
    Row("aha-wam-front-hour-tips-start-batch16", "training",
        "aha-wam-front-hour-tips-start with batch 16 (32): 1.9x the steps (beside the low-priority CI run)", minutes=60),
    Row("fast-wam-replan4", "training", "fast-wam-front, 4 actions per chunk (8)", run="fast-wam-front",
        eval_args=("--replan", "4")),
    Row("fast-wam-replan16", "training", "fast-wam-front, 16 actions per chunk (8)", run="fast-wam-front",
        eval_args=("--replan", "16")),
    Row("fast-wam-ensemble", "training", "fast-wam-front, temporal ensembling (ACT, m = 0.01; a call every step, 8x the calls)", run="fast-wam-front",
        eval_args=("--ensemble", "0.01")),
]


#: Evaluations of the same recipes at the same budget on the papers' pages.
FROM_PAGES = {**{r: f"results/fast_wam/eval-{r}.json" for r in ("fast-wam", "fast-wam-joint", "fast-wam-idm",
                                                                  "fast-wam-novideo")},
              **{r: f"results/aha_wam/eval-{r}.json" for r in ("aha-wam", "aha-wam-no-ovcr", "aha-wam-no-offset")}}


def _eval(root: Path, row: str) -> tuple[dict | None, str | None]:
    """The row's evaluation and, when borrowed from a paper page, that file."""
    own = report.load(root / OUT / f"eval-{row}.json")
    if own is not None or row not in FROM_PAGES:
        return own, None
    return report.load(root / FROM_PAGES[row]), FROM_PAGES[row]


def _rows(names: list[str] | None) -> list[Row]:
    if not names:
        return ROWS
    known = {r.name: r for r in ROWS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {', '.join(known)}")
    return [known[n] for n in names]


def jobs(minutes: float | None, names: list[str] | None = None) -> list[report.Job]:
    """Trainings (stage 1s first, each once), evaluations, then one interleaved latency run."""
    budget = BUDGET if minutes is None else minutes
    rows, out, trained = _rows(names), [], set()
    for row in rows:
        if row.run is not None:  # evaluated from another row's run: nothing to train
            continue
        two_stage = row.stage1 is not None and row.stage1 not in {r.name for r in ROWS}
        if row.stage1 and row.stage1 not in trained and two_stage:
            out.append(report.train_job(row.stage1, budget / 2))
            trained.add(row.stage1)
        own = row.minutes or budget  # a two-stage row's stage 1 has half the board's budget, its stage 2 the rest
        out.append(report.train_job(row.name, own - budget / 2 if row.stage1 else own,
                                    after=f"runs/{row.stage1}" if row.stage1 else None))
    out += [report.eval_job(f"runs/{r.folder}", ["--suite", "mw-easy", *r.eval_args], EPISODES,
                            f"{OUT}/eval-{r.name}.json") for r in rows]
    # latency does not depend on the weights: every row's recipe is timed (untrained), runs or not, and all of
    # them whatever --rows says (one interleaved run keeps them comparable and the file whole)
    bench = ["wamzoo", "bench", "latency", *[r.name for r in ROWS if r.run is None], "--repeats", "20"]
    out.append(report.Job("latency", bench + ["--json", f"{OUT}/latency.json"]))
    return out


#: The action bound of a row whose training record predates ``action_bound``: every such run used unclipped actions.
UNCLIPPED = 12.0


def board(root: Path = report.ROOT) -> list[dict]:
    """One record per row from the result files (``None`` fields where not run)."""
    lat = report.latency_by_target(report.load(root / OUT / "latency.json"))
    records = []
    for row in ROWS:
        e, borrowed = _eval(root, row.name)
        # a borrowed evaluation is of the page's run, whose figures its page recorded: this machine's run of the
        # row (e.g. a stage 1) is not it
        trained = (report.load(root / Path(borrowed).parent / f"train-{row.folder}.json") or {} if borrowed else
                   report.recorded_training(root / "runs" / row.folder, root / OUT / f"train-{row.folder}.json"))
        latency = lat.get(row.folder, {})
        journal = root / OUT / f"eval-{row.name}.json.partial"  # an evaluation under way (wamzoo.journal)
        records.append({
            "row": row.name, "group": row.group, "parts": row.paper, "stage1": row.stage1,
            "success": {t: v["success_rate"] for t, v in e["tasks"].items()} if e else None,
            "mean_success": e["mean_success_rate"] if e else None,
            "latency_ms": latency.get("median_ms"), "params_m": latency.get("params_m"),
            "steps": trained.get("steps"), "train_minutes": trained.get("minutes"),
            # an evaluated run recorded before the records kept the data's action bound trained on unclipped actions
            "unclipped_actions": e is not None and trained.get("action_bound", UNCLIPPED) > 1,
            "eval_command": e.get("command") if e else None,
            "from_page": borrowed,
            "episodes_evaluated": len(read_journal(journal)[1]) if e is None and journal.exists() else None,
            "seeds": [e["seeds"][0], e["seeds"][-1]] if e else None})
    return records


def regime_rows(root: Path = report.ROOT) -> list[dict]:
    """One record per regime of ``benchmarks/regimes.py`` (a mechanism against its ablation where it is meant to
    pay off, on its own data): both means, the paired difference and its interval (``None`` where not run)."""
    records = []
    for name, regime in regimes.REGIMES.items():
        evals = {r: report.load(root / "results" / name / f"eval-{r}.json") for r in (regime.with_, regime.without)}
        diff = (regimes.paired_difference(regimes.outcomes(evals[regime.with_]), regimes.outcomes(evals[regime.without]))
                if all(evals.values()) else None)
        records.append({"regime": name, "title": regime.title, "with": regime.with_, "without": regime.without,
                        "mean_with": (evals[regime.with_] or {}).get("mean_success_rate"),
                        "mean_without": (evals[regime.without] or {}).get("mean_success_rate"),
                        "difference": diff, "page": f"results/{name}.md"})
    return records


def _regime_section(root: Path) -> list[str]:
    rows = []
    for r in regime_rows(root):
        d = r["difference"]
        rows.append([f"[{r['regime']}]({Path(r['page']).name})", r["title"], f"`{r['with']}` / `{r['without']}`",
                     report.pct(r["mean_with"]), report.pct(r["mean_without"]),
                     f"**{100 * d['difference']:+.1f}** [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]" if d
                     else report.NOT_RUN, str(d["layouts"]) if d else "-"])
    return ["", "## Regimes: a mechanism against its ablation where it is meant to pay off", "",
            "Each on its own data and budget (its page says which and lists its commands; "
            f"`python {regimes.SCRIPT} REGIME --run`); difference in points with its 95% paired-bootstrap interval.",
            "", *report.table(["regime", "where", "with / without", "with", "without", "difference", "layouts"], rows,
                              "lllrrrr")]


def render(minutes: float | None = None, root: Path = report.ROOT) -> str:
    budget = BUDGET if minutes is None else minutes
    records = board(root)
    tasks = next((list(r["success"]) for r in records if r["success"]), [])
    lines = report.header("Leaderboard: every composition on Meta-World mw-easy at one CPU budget", SCRIPT,
                          f"Each row trained for at most {budget:g} minutes (its description names any other budget) on one core"
                          " (two trainings side by side),"
                          f" evaluated on {EPISODES} layouts per task with seeds disjoint from training.")
    short = [t.removesuffix("-v3") for t in tasks]
    rows = []
    for r in records:
        s = r["success"]
        rows.append([f"`{r['row']}`" + (" †" if r["from_page"] else "") + (" ‡" if r["unclipped_actions"] else ""), r["group"], r["parts"], *[report.pct(s[t]) if s else report.NOT_RUN
                                                               for t in tasks],
                     f"**{report.pct(r['mean_success'])}**" if r["episodes_evaluated"] is None
                     else f"**{r['episodes_evaluated']}/{EPISODES * len(tasks)} evaluated**",
                     report.num(r["latency_ms"], ".1f"),
                     report.num(r["params_m"], ".2f"), report.num(r["steps"], "d"),
                     report.num(r["train_minutes"], ".0f")])
    lines += report.table(["row", "group", "parts", *short, "mean", "ms / chunk", "params (M)", "steps", "minutes"],
                          rows, "lll" + "r" * (len(tasks) + 5))
    threads = sorted({r["threads"] for r in report.load(root / OUT / "latency.json") or []})
    lines += ["", "ms / chunk: median of `wamzoo bench latency` over every row's recipe, calls interleaved"
              + (f", {'/'.join(map(str, threads))} thread(s)." if threads else ".") +
              " Steps and minutes: the run's `metrics.csv` and wall time. A HarmoWAM row's minutes are its stage 2's;"
              " its stage 1 trained for the other half of the budget (`harmo-wam-on-fast-wam`: the `fast-wam` row).",
              "† evaluation read from the paper's page (same recipe, same budget, same layouts) until the row's own"
              " evaluation exists; steps and minutes are then the page's run's (its training table).",
              "‡ trained on demonstrations that recorded Meta-World's unclipped expert actions (up to ±12, executed"
              " clipped to ±1; `wamzoo.data.generate`), on which policies learned to ignore the goal: compare these"
              " rows with each other only; unmarked rows trained on the executed actions."]
    lines += _regime_section(root) + [""]
    lines += report.commands_section(jobs(minutes), SCRIPT, 2)
    lines += ["Evaluation commands as recorded in each result file:", ""]
    lines += [f"- `{r['row']}`: `{r['eval_command']}`" for r in records if r["eval_command"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs="*", choices=STEPS, default=None, help="run these steps first (no value: all)")
    p.add_argument("--rows", nargs="*", default=None, help="only these rows (default: all)")
    p.add_argument("--minutes", type=float, default=None, help=f"budget per row (default {BUDGET:g})")
    p.add_argument("--jobs", type=int, default=1, help="train this many runs at a time (default 1)")
    args = p.parse_args(argv)
    if args.run is not None:
        report.run_steps(jobs(args.minutes, args.rows), args.run or STEPS, n=args.jobs)
    report.write_page(render(args.minutes), report.ROOT / "results" / "leaderboard.md")
    (report.ROOT / "results" / "leaderboard.json").write_text(json.dumps({"rows": board(), "regimes": regime_rows()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
