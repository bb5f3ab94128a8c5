"""Closed-loop evaluation throughput, this checkout against an earlier commit, side by side in one run.

    python benchmarks/eval_throughput.py                        # fast-wam.mw-easy-small on mw-easy vs 8a90132
    python benchmarks/eval_throughput.py --base REV --target NAME --episodes 10 --rounds 2

The earlier commit runs from a git worktree (``git worktree add --detach``) with this environment's
packages, its own ``wamzoo`` and plugins first on ``PYTHONPATH``; the two evaluations alternate
(``rounds`` times each, same seeds, same workers), so a change of load on this shared machine falls on
both. The default base, 8a90132, is the evaluator before batched evaluation (one policy call per
episode and chunk, every frame rendered). Writes ``results/eval_throughput.md`` and ``.json``:
episodes per minute of each, their ratio, and the success rates (the same seeds; batching does not
change an episode's actions beyond float rounding, so success agrees within noise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

BASE = "8a90132"
OUT = report.ROOT / "results" / "eval_throughput"


def worktree(rev: str) -> Path:
    """A detached worktree of ``rev`` under the temp folder (made once, reused)."""
    path = Path(tempfile.gettempdir()) / f"wamzoo-{rev}"
    if not (path / "wamzoo").is_dir():
        subprocess.run(["git", "-C", str(report.ROOT), "worktree", "add", "--detach", "-f", str(path), rev],
                       check=True, capture_output=True)
    return path


def evaluate(root: Path | None, target: str, suite: str, episodes: int, out: Path) -> dict:
    """``wamzoo eval`` from ``root``'s sources (``None``: this checkout's), outside any source folder."""
    env = {**os.environ, **report.ENV, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(root), *map(str, sorted((root / "plugins").glob("*")))])
    cmd = [sys.executable, "-m", "wamzoo.cli", "eval", target, "--suite", suite, "--episodes", str(episodes),
           "--workers", "2", "--json", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default=BASE)
    p.add_argument("--target", default="fast-wam.mw-easy-small")
    p.add_argument("--suite", default="mw-easy")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    base = worktree(args.base)
    OUT.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {args.base: [], "this": []}
    for r in range(args.rounds):
        for label, root in ((args.base, base), ("this", None)):
            rep = evaluate(root, args.target, args.suite, args.episodes, OUT / f"{label}-{r}.json")
            runs[label].append({"episodes_per_min": rep["episodes_per_min"], "wall_s": rep["wall_s"],
                                "mean_success": rep["mean_success_rate"],
                                "success": {t: v["success_rate"] for t, v in rep["tasks"].items()},
                                "batch": rep.get("batch", 1)})
    mean = lambda label, key: sum(x[key] for x in runs[label]) / len(runs[label])  # noqa: E731
    ratio = mean("this", "episodes_per_min") / mean(args.base, "episodes_per_min")
    command = " ".join(["python", "benchmarks/eval_throughput.py", *(argv if argv is not None else sys.argv[1:])])
    record = {"command": command, "target": args.target, "suite": args.suite, "episodes": args.episodes,
              "rounds": args.rounds, "base": args.base, "runs": runs, "ratio": ratio}
    (OUT.parent / "eval_throughput.json").write_text(json.dumps(record, indent=1) + "\n")
    tasks = list(runs["this"][0]["success"])
    rows = [[label if label == "this" else f"{label} (before)", f"{mean(label, 'episodes_per_min'):.1f}",
             f"{mean(label, 'wall_s'):.0f}", str(runs[label][0]["batch"]),
             *[report.pct(sum(x["success"][t] for x in runs[label]) / len(runs[label])) for t in tasks],
             f"**{report.pct(mean(label, 'mean_success'))}**"] for label in (args.base, "this")]
    lines = report.header("Closed-loop evaluation throughput", "benchmarks/eval_throughput.py",
                          f"`{args.target}` on {args.suite}, {args.episodes} episodes per task, the same seeds, 2 workers,"
                          f" {args.rounds} round(s) each, alternating.")
    lines += report.table(["evaluator", "episodes / min", "wall s", "episodes per call",
                           *[t.removesuffix("-v3") for t in tasks], "mean"], rows, "l" + "r" * (len(tasks) + 4))
    lines += ["", f"Throughput ratio: **{ratio:.2f}x**.", "", f"Command: `{command}`", ""]
    report.write_page("\n".join(lines) + "\n", OUT.parent / "eval_throughput.md")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
