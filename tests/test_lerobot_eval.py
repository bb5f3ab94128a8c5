"""The pieces of ``benchmarks/lerobot_eval.py`` that run without LeRobot: reading both evaluators' reports."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lerobot_eval as bench  # noqa: E402


def test_lerobot_report_gives_each_episode_its_seed():
    info = {"per_task": [{"task_group": "drawer-close-v3", "task_id": 0,
                          "metrics": {"successes": [True, False, True], "sum_rewards": [1, 0, 1]}}],
            "per_group": {}, "overall": {}}
    assert bench.lerobot_outcomes(info, 1_000_000) == {1_000_000: True, 1_000_001: False, 1_000_002: True}


def test_wamzoo_report_reads_seed_and_success():
    rep = {"episodes": [{"task": "drawer-close-v3", "seed": 1_000_001, "success": False},
                        {"task": "drawer-close-v3", "seed": 1_000_000, "success": True}]}
    assert bench.wamzoo_outcomes(rep) == {1_000_000: True, 1_000_001: False}
