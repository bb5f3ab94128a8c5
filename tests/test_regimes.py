"""``benchmarks/regimes.py``'s statistics: the paired difference and its bootstrap interval."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import regimes as bench  # noqa: E402


def test_paired_difference_counts_layouts_and_brackets_the_mean():
    a = {("t", s): s % 2 == 0 for s in range(100)}            # 50%
    b = {("t", s): s % 4 == 0 for s in range(100)}            # 25%, a subset of a's successes
    d = bench.paired_difference(a, b)
    assert d["layouts"] == 100 and d["difference"] == pytest.approx(0.25)
    assert d["only_a"] == 25 and d["only_b"] == 0
    assert d["low"] < 0.25 < d["high"] and d["low"] > 0.1   # 25 discordant layouts, all one way


def test_paired_difference_of_identical_runs_is_exactly_zero():
    a = {("t", s): s % 3 == 0 for s in range(60)}
    d = bench.paired_difference(a, dict(a))
    assert d["difference"] == d["low"] == d["high"] == 0.0


def test_outcomes_read_an_evaluation_report():
    rep = {"episodes": [{"task": "reach-v3", "seed": 1000000, "success": True}]}
    assert bench.outcomes(rep) == {("reach-v3", 1000000): True}


def test_evaluations_without_shared_layouts_are_refused():
    with pytest.raises(ValueError, match="no layout"):
        bench.paired_difference({("t", 1): True}, {("t", 2): True})


def test_the_ovcr_page_says_what_the_lag_costs_each_run(tmp_path):
    import json

    def write(path, wins):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"mean_success_rate": sum(wins) / len(wins),
                                    "tasks": {"reach-v3": {"success_rate": sum(wins) / len(wins), "episodes": 4}},
                                    "episodes": [{"task": "reach-v3", "seed": 1000000 + i, "success": w}
                                                 for i, w in enumerate(wins)]}))

    with_, without = bench.REGIMES["ovcr"].with_, bench.REGIMES["ovcr"].without
    for recipe, lagged, calm, minutes in ((with_, [1, 1, 0, 0], [1, 1, 1, 0], 39), (without, [1, 0, 0, 0], [1, 0, 0, 0], 26)):
        write(tmp_path / "results" / "ovcr" / f"eval-{recipe}.json", lagged)
        write(tmp_path / "results" / "leaderboard" / f"eval-{recipe}.json", calm)
        (tmp_path / "results" / "ovcr" / f"train-{recipe}.json").write_text(json.dumps({"steps": 800, "minutes": minutes}))
    page, diff = bench.render("ovcr", root=tmp_path)
    assert diff["difference"] == pytest.approx(0.25)
    # a run that stopped at its step cap well before the minutes is named: the pair is then at equal steps
    assert f"before the 40 minutes: `{without}` after 26 minutes (800 steps); the comparison is then at equal steps" in page
    assert f"`{with_}` 75% unstressed, -25.0" in page and f"`{without}` 25% unstressed, +0.0 [+0.0, +0.0]" in page
