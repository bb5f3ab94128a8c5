"""Meta-World success of one policy through ``lerobot-eval`` and through ``wamzoo eval``, on the same layouts.

    python benchmarks/lerobot_eval.py runs/bc-lerobot-drawer --task drawer-close-v3 --episodes 10

The policy must be trained on LeRobot's Meta-World observations (``wamzoo data metaworld --lerobot-env``), so
both evaluators show it the same camera and state: LeRobot's own env (``lerobot-eval --env.type=metaworld
--policy.type=wamzoo --policy.pretrained=POLICY``, in the LeRobot environment ``--venv`` that
``scripts/test_lerobot.sh`` makes) and wamzoo's (``MetaWorldEnv.like_lerobot``). Both run episodes of seeds
``--seed``, ``--seed + 1``, ... (Meta-World draws the layout from the reset seed in both), up to 500 steps
(LeRobot's Meta-World limit), executing ``--replan`` actions per chunk. The noise differs (LeRobot's plugin
seeds every chunk with 0, wamzoo each episode with its seed), so single episodes may differ; the success rates
are compared. Writes ``results/lerobot_eval.md`` and ``.json`` with each episode's outcome on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

OUT = report.ROOT / "results" / "lerobot_eval.md"
MAX_STEPS = 500  # LeRobot's MetaworldEnv._max_episode_steps


def lerobot_side(venv: Path, policy: Path, task: str, episodes: int, seed: int, replan: int, out: Path) -> dict:
    """``lerobot-eval`` of ``policy``: each episode's seed and success (from its ``eval_info.json``)."""
    argv = [str(venv / "bin" / "lerobot-eval"), "--policy.type=wamzoo", f"--policy.pretrained={policy}",
            f"--policy.n_action_steps={replan}", "--policy.device=cpu", "--env.type=metaworld", f"--env.task={task}",
            f"--eval.n_episodes={episodes}", "--eval.batch_size=1", f"--seed={seed}",
            '--rename_map={"observation.image": "observation.images.corner2"}', f"--output_dir={out}"]
    env = {**os.environ, "MUJOCO_GL": "egl", "HF_HUB_OFFLINE": "1", "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return lerobot_outcomes(json.loads((out / "eval_info.json").read_text()), seed)


def lerobot_outcomes(info: dict, seed: int) -> dict[int, bool]:
    """Seed -> success from ``lerobot-eval``'s ``eval_info.json`` of one task run with ``--eval.batch_size=1``
    (episode ``i`` ran on the layout of ``seed + i``)."""
    (only,) = info["per_task"]
    return {seed + i: bool(ok) for i, ok in enumerate(only["metrics"]["successes"])}


def wamzoo_outcomes(rep: dict) -> dict[int, bool]:
    """Seed -> success from a ``wamzoo eval --json`` report."""
    return {int(ep["seed"]): bool(ep["success"]) for ep in rep["episodes"]}


def wamzoo_side(policy: Path, task: str, episodes: int, seed: int, replan: int, out: Path) -> dict:
    """``wamzoo eval`` of ``policy`` (one worker): each episode's seed and success."""
    argv = ["wamzoo", "eval", str(policy), "--tasks", task, "--episodes", str(episodes), "--seed", str(seed),
            "--replan", str(replan), "--max-steps", str(MAX_STEPS), "--workers", "1", "--json", str(out)]
    subprocess.run(argv, check=True, env={**os.environ, "MUJOCO_GL": "egl"}, stdout=subprocess.DEVNULL)
    return wamzoo_outcomes(json.loads(out.read_text()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy", help="a wamzoo run or saved folder trained on --lerobot-env data")
    p.add_argument("--task", default="drawer-close-v3")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1_000_000)
    p.add_argument("--replan", type=int, default=8)
    p.add_argument("--venv", default=os.environ.get("LEROBOT_CI_VENV", str(report.ROOT.parent / "lerobot-ci-venv")))
    args = p.parse_args(argv)
    policy, venv = Path(args.policy).resolve(), Path(args.venv)
    if not (venv / "bin" / "lerobot-eval").is_file():
        raise SystemExit(f"no lerobot-eval in {venv}: make the environment with `bash scripts/test_lerobot.sh`")
    work = Path(tempfile.mkdtemp(prefix="lerobot-eval-"))
    t0 = time.perf_counter()
    theirs = lerobot_side(venv, policy, args.task, args.episodes, args.seed, args.replan, work / "lerobot")
    t1 = time.perf_counter()
    ours = wamzoo_side(policy, args.task, args.episodes, args.seed, args.replan, work / "wamzoo.json")
    t2 = time.perf_counter()
    seeds = sorted(set(theirs) | set(ours))
    if set(theirs) != set(ours):
        raise SystemExit(f"the two evaluators ran different seeds: lerobot {sorted(theirs)}, wamzoo {sorted(ours)}")
    rate = lambda d: 100.0 * sum(d.values()) / len(d)  # noqa: E731
    command = " ".join(["python benchmarks/lerobot_eval.py", *(argv if argv is not None else sys.argv[1:])])
    record = {"command": command, "policy": str(args.policy), "task": args.task, "seeds": seeds,
              "replan": args.replan, "max_steps": MAX_STEPS, "lerobot": {str(s): theirs[s] for s in seeds},
              "wamzoo": {str(s): ours[s] for s in seeds}, "lerobot_success": rate(theirs), "wamzoo_success": rate(ours),
              "lerobot_wall_s": t1 - t0, "wamzoo_wall_s": t2 - t1,
              "agree": sum(theirs[s] == ours[s] for s in seeds)}
    OUT.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    mark = lambda b: "ok" if b else "-"  # noqa: E731
    lines = report.header("Meta-World success through lerobot-eval and wamzoo eval", "benchmarks/lerobot_eval.py",
                          f"One policy (`{args.policy}`, trained on `wamzoo data metaworld --lerobot-env` data), task"
                          f" `{args.task}`, the same {len(seeds)} layouts (seeds {seeds[0]}..{seeds[-1]}), up to"
                          f" {MAX_STEPS} steps, {args.replan} actions per chunk; LeRobot's env and its plugin"
                          " (`--policy.type=wamzoo`) against wamzoo's evaluator on the same observations.")
    lines += report.table(["evaluator", "success", "wall s", *[str(s) for s in seeds]],
                          [["lerobot-eval", f"**{rate(theirs):.0f}%**", f"{t1 - t0:.0f}", *[mark(theirs[s]) for s in seeds]],
                           ["wamzoo eval", f"**{rate(ours):.0f}%**", f"{t2 - t1:.0f}", *[mark(ours[s]) for s in seeds]]],
                          "lrr" + "c" * len(seeds))
    lines += ["", f"Same outcome on {record['agree']} of {len(seeds)} layouts (the chunks' noise differs: LeRobot's"
              " plugin seeds each chunk with 0, wamzoo each episode with its layout seed).", ""]
    report.publish(lines, command, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
