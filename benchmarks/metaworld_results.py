"""Regenerate ``results/metaworld.md``: the embedded Meta-World benchmark's own numbers, how fast
demonstrations are generated and how well Meta-World's scripted experts do in closed loop, with
the commands that produced every number.

    python benchmarks/metaworld_results.py                  # tables from the JSON files below
    python benchmarks/metaworld_results.py --run            # first generate demonstrations, then evaluate

Inputs (written by the commands listed in the output; each holds /tmp/wamzoo-cpu.lock):

- ``results/metaworld/datagen.json``: ``wamzoo data metaworld --suite mw-easy --episodes 20 --out
  data/mw-easy-rate --workers 2``, timed by ``--run data`` (wall seconds, the command, and the
  frame and episode counts of the dataset's ``meta/info.json``). The folder is emptied first: a
  rerun into an existing dataset resumes and would time nothing.
- ``results/metaworld/scripted-<suite>.json``: ``wamzoo eval --policy scripted --suite <suite>
  --episodes N --json ...`` (mw-easy 10, mw-mt10 5 episodes per task); the evaluator records
  success and steps per task, control frequency, wall seconds and episodes per minute.

Nothing is typed in by hand: a missing input shows as "not run".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SCRIPT = "benchmarks/metaworld_results.py"
STEPS = ("data", "eval")
OUT = "results/metaworld"
DATA_SUITE, DATA_EPISODES, DATA_WORKERS = "mw-easy", 20, 2
DATA_OUT = "data/mw-easy-rate"  # scratch dataset of the timing, emptied before each timed run
EVAL_EPISODES = {"mw-easy": 10, "mw-mt10": 5}  # suite -> episodes per task


def data_job(episodes: int = DATA_EPISODES, out: str = DATA_OUT, root: Path = report.ROOT) -> report.Job:
    """``wamzoo data metaworld`` into an emptied ``out``, timed; writes ``OUT/datagen.json``."""
    job = report.Job("data", ["wamzoo", "data", "metaworld", "--suite", DATA_SUITE, "--episodes", str(episodes),
                              "--out", out, "--workers", str(DATA_WORKERS)])
    job.call = lambda: record_datagen(job, root)
    return job


def record_datagen(job: report.Job, root: Path) -> dict:
    """Run ``job`` (a ``wamzoo data`` command) from an empty ``--out`` and record its wall seconds
    with the totals of the dataset it wrote."""
    out = root / job.argv[job.argv.index("--out") + 1]
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(job.argv, cwd=root, env={**os.environ, **report.ENV}, check=True)
    wall = time.perf_counter() - t0
    info = json.loads((out / "meta" / "info.json").read_text())
    rec = {"command": job.shell(), "wall_s": wall, "total_frames": info["total_frames"],
           "total_episodes": info["total_episodes"], "tasks": info["wamzoo"]["tasks"],
           "episodes_per_task": int(job.argv[job.argv.index("--episodes") + 1]), "workers": DATA_WORKERS,
           "failed_episodes": len(list((out / "raw").glob("*/*.fail.npz"))), "fps": info["fps"],
           "cameras": info["wamzoo"]["cameras"], "size": info["wamzoo"]["height"]}
    path = root / OUT / "datagen.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2))
    return rec


def eval_job(suite: str, episodes: int) -> report.Job:
    """``wamzoo eval --policy scripted --suite SUITE --episodes N --json OUT/scripted-SUITE.json``."""
    return report.Job("eval", ["wamzoo", "eval", "--policy", "scripted", "--suite", suite, "--episodes",
                               str(episodes), "--json", f"{OUT}/scripted-{suite}.json"])


def jobs(minutes: float | None = None, root: Path = report.ROOT, data_episodes: int = DATA_EPISODES,
         eval_episodes: dict[str, int] = EVAL_EPISODES, data_out: str = DATA_OUT) -> list[report.Job]:
    """The page's commands (no trainings: ``minutes`` is unused); smaller sizes for a smoke check."""
    return [data_job(data_episodes, data_out, root)] + [eval_job(s, n) for s, n in eval_episodes.items()]


def datagen_section(d: dict | None) -> list[str]:
    if not d:
        title = f"{DATA_SUITE}, {DATA_EPISODES} demonstrations per task, {DATA_WORKERS} workers"
        return [f"## Demonstration generation ({title})", "", report.NOT_RUN, ""]
    title = f"{DATA_SUITE}, {d['episodes_per_task']} demonstrations per task, {d['workers']} workers"
    row = [d["total_episodes"], d["total_frames"], f"{d['wall_s']:.0f}", f"{d['total_frames'] / d['wall_s']:.0f}",
           f"{60 * d['total_episodes'] / d['wall_s']:.1f}", d["failed_episodes"]]
    return ([f"## Demonstration generation ({title})", ""]
            + report.table(["episodes kept", "frames written", "wall s", "frames / s", "episodes / min",
                            "expert failures (discarded)"], [row], "rrrrrr")
            + ["", f"Frames written: `total_frames` of the dataset's meta/info.json (kept episodes only; a discarded"
                   f" failure's frames count in the wall time, not in the frames). Each frame: {len(d['cameras'])}"
                   f" cameras ({', '.join(d['cameras'])}), {d['size']}x{d['size']} RGB and depth, state and action;"
                   f" simulated control rate {d['fps']:g} Hz. Wall time from start to meta/info.json written,"
                   f" into an empty folder (`python {SCRIPT} --run data`).", ""])


def steps_cell(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def scripted_section(evals: dict[str, dict | None]) -> list[str]:
    """A summary row per suite, then success, steps to success and control frequency per task."""
    rows = []
    for suite, e in evals.items():
        if not e:
            rows.append([suite, EVAL_EPISODES[suite], report.NOT_RUN, "-", "-", "-", "-"])
            continue
        rows.append([suite, len(e["seeds"]), f"**{report.pct(e['mean_success_rate'])}**", e["workers"],
                     f"{e['wall_s']:.0f}", f"{e['episodes_per_min']:.1f}", f"{e['env_steps_per_s']:.0f}"])
    lines = ["## Scripted expert in closed loop (`wamzoo eval --policy scripted`)", ""]
    lines += report.table(["suite", "episodes per task", "mean success", "workers", "wall s", "episodes / min",
                           "env steps / s"], rows, "lrrrrrr")
    for suite, e in evals.items():
        if not e:
            continue
        per = [[t, report.pct(v["success_rate"]), f"{v['successes']} / {v['episodes']}",
                steps_cell(v["mean_steps_to_success"]), f"{v['control_hz']:.0f}"] for t, v in e["tasks"].items()]
        lines += ["", f"### {suite}", ""]
        lines += report.table(["task", "success", "successes / episodes", "mean steps to success", "control Hz"],
                              per, "lrrrr")
    host = next((e for e in evals.values() if e), None)
    if host:
        lines += ["", f"Evaluation layouts: seeds {host['seeds'][0]}..{host['seeds'][-1]} (disjoint from the"
                      f" training seeds), at most {host['max_steps']} steps per episode, one action per expert call."
                      " Control Hz: env steps per second of episode wall time within one worker (physics and the"
                      " expert; the expert renders no camera). Episodes / min and env steps / s: the whole"
                      " evaluation's wall time, worker start-up included."]
    return lines + [""]


def render(minutes: float | None = None, root: Path = report.ROOT) -> str:
    out = root / OUT
    datagen = report.load(out / "datagen.json")
    evals = {s: report.load(out / f"scripted-{s}.json") for s in EVAL_EPISODES}
    lines = report.header("Meta-World (embedded benchmark): demonstration rate and the scripted experts", SCRIPT)
    lines += datagen_section(datagen)
    lines += scripted_section(evals)
    commands = report.commands_section(jobs(), SCRIPT)
    at = next(i for i, c in enumerate(commands) if " wamzoo data " in c)
    commands.insert(at, f"# timed by python {SCRIPT} --run data, which empties {DATA_OUT} first")
    lines += commands
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return report.main(argv, __doc__, STEPS, "metaworld.md", jobs, render, None, minutes_help=None)


if __name__ == "__main__":
    sys.exit(main())
