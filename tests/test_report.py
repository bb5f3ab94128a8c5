"""benchmarks/report.py: pages rendered from fabricated results, and the job runner."""

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
report = importlib.import_module("report")


def _eval(rates: dict[str, float], ms: float, seeds=(1000, 1019)) -> dict:
    return {"suite": "mw-easy", "mean_success_rate": sum(rates.values()) / len(rates),
            "tasks": {t: {"success_rate": r, "episodes": 20, "policy_latency_ms": ms} for t, r in rates.items()},
            "replan": 8, "max_steps": 300, "seeds": list(range(seeds[0], seeds[1] + 1))}


def _lat(target: str, median: float) -> dict:
    return {"target": target, "median_ms": median, "p90_ms": median * 1.25, "params_m": 1.9, "repeats": 30,
            "threads": 2}


def _run_folder(root: Path, recipe: str, losses: list[float], minutes: str | None, jobs: str | None) -> None:
    run = root / "runs" / recipe
    run.mkdir(parents=True)
    lines = ["epoch,lr,step,train/loss"]
    for i, loss in enumerate(losses):
        step = 25 * (i + 1) - 1
        lines += [f",0.001,{step},", f"0,,{step},{loss}"]  # a learning-rate row and a loss row per log
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    (run / "hparams.yaml").write_text(yaml.safe_dump(
        {"recipe": {"name": recipe, "trainer": {"max_steps": 2400, "max_minutes": 40.0, "threads": 1}},
         "info": {"stats": {"action": {"min": [-1.0, -0.5], "max": [1.0, 0.25]}}}}))
    if minutes:
        (run / "train_minutes.txt").write_text(minutes)
    if jobs:
        (run / "train_jobs.txt").write_text(jobs)


@pytest.fixture()
def fast_page(tmp_path):
    out = tmp_path / "results" / "fast_wam"
    out.mkdir(parents=True)
    (out / "eval-fast-wam.json").write_text(json.dumps(_eval({"reach-v3": 1.0, "drawer-close-v3": 0.5}, 12.34)))
    (out / "eval-fast-wam-idm.json").write_text(json.dumps(_eval({"reach-v3": 0.75, "drawer-close-v3": 0.25}, 50.0)))
    (out / "latency.json").write_text(json.dumps([_lat("fast-wam-idm", 80.0), _lat("fast-wam", 20.0)]))
    _run_folder(tmp_path, "fast-wam", [2.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5], "39.6\n", "2\n")
    _run_folder(tmp_path, "fast-wam-idm", [3.0, 2.0], "40.1\n", "2\n")
    fast = importlib.import_module("fast_wam_results")
    return fast.render(root=tmp_path)


def _row(page: str, first_cell: str, nth: int = 0) -> list[str]:
    """The cells after ``first_cell`` of the ``nth`` table row it starts."""
    line = [x for x in page.splitlines() if x.startswith(f"| {first_cell} |")][nth]
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_training_records_keep_a_page_whole_once_the_runs_are_gone(tmp_path):
    _run_folder(tmp_path, "fast-wam", [2.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5], "39.6\n", "2\n")
    fast = importlib.import_module("fast_wam_results")
    page = fast.render(root=tmp_path)
    assert _row(page, "Fast-WAM (skip imagination)", nth=-1) == ["175 / 2400", "39.6 / 40", "0.7000"]
    record = tmp_path / "results" / "fast_wam" / "train-fast-wam.json"
    report.recorded_training(tmp_path / "runs" / "fast-wam", record, ())  # asking for no loss keeps the others'
    assert json.loads(record.read_text())["last"] == {"train/loss": pytest.approx(0.7)}
    shutil.rmtree(tmp_path / "runs")  # runs/ is not committed: a fresh clone has only the records
    assert fast.render(root=tmp_path) == page
    assert report.side_by_side(["fast-wam"], "results/fast_wam", tmp_path) == 2


def test_fast_page_numbers_and_missing_cells(fast_page):
    # columns: Fast-WAM, Joint, IDM, no video
    assert _row(fast_page, "reach-v3") == ["100%", "not run", "75%", "not run"]
    assert _row(fast_page, "drawer-close-v3") == ["50%", "not run", "25%", "not run"]
    assert _row(fast_page, "**mean**") == ["**75%**", "not run", "**50%**", "not run"]
    assert _row(fast_page, "policy ms / chunk in the eval loop") == ["12.3", "-", "50.0", "-"]
    # latency: ratio to Fast-WAM's median, missing variants "not run"
    assert _row(fast_page, "IDM")[1:] == ["1.90", "80.0", "100.0", "4.00"]
    assert _row(fast_page, "Joint")[1:] == ["-", "not run", "-", "-"]
    assert "IDM / Fast-WAM = **4.0x**" in fast_page and "Joint / Fast-WAM" not in fast_page
    # training: steps counted from the last log (+1), recorded minutes of the recipe's cap, last-5 mean
    assert _row(fast_page, "Fast-WAM (skip imagination)", nth=-1) == ["175 / 2400", "39.6 / 40", "0.7000"]
    assert _row(fast_page, "no video co-training (λ=0)", nth=-1) == ["not run", "-", "-"]
    assert "Fast-WAM (skip imagination), IDM: trained two side by side, one thread each." in fast_page
    assert "Evaluation: replan 8 actions per chunk, at most 300 steps per episode, seeds 1000..1019." in fast_page
    assert "Latency: 30 calls after warm-up, 2 threads" in fast_page


def test_fast_page_lists_the_exact_commands(fast_page):
    lines = fast_page.splitlines()
    env = "OMP_WAIT_POLICY=PASSIVE "
    assert "# 2 at a time, together under flock /tmp/wamzoo-cpu.lock:" \
           " python benchmarks/fast_wam_results.py --run train --jobs 2" in lines
    assert env + "wamzoo train fast-wam" in lines  # the budget lives in the recipe
    assert not any("max_minutes" in x for x in lines)
    assert (env + "flock /tmp/wamzoo-cpu.lock wamzoo eval runs/fast-wam-idm --suite mw-easy --episodes 20"
            " --json results/fast_wam/eval-fast-wam-idm.json") in lines
    assert (env + "flock /tmp/wamzoo-cpu.lock wamzoo bench latency fast-wam-idm fast-wam-joint fast-wam"
            " fast-wam-novideo --repeats 30 --json results/fast_wam/latency.json") in lines
    fast = importlib.import_module("fast_wam_results")
    assert fast.jobs(25)[0].argv == ["wamzoo", "train", "fast-wam", "trainer.max_minutes=25"]


@pytest.mark.parametrize("script", ["fast_wam_results", "x_wam_results", "aha_wam_results", "harmo_wam_results",
                                    "metaworld_results"])
def test_every_page_renders_without_inputs(tmp_path, script):
    page = importlib.import_module(script).render(root=tmp_path)
    assert "not run" in page and "## Commands" in page and f"python benchmarks/{script}.py\n```" in page
    assert "side by side" not in page  # nothing recorded, nothing claimed


def test_x_page_reach_free_mean_and_missing_4d_metrics(tmp_path):
    out = tmp_path / "results" / "x_wam"
    out.mkdir(parents=True)
    e = _eval({"reach-v3": 1.0, "drawer-close-v3": 0.0}, 100.0)
    e["mean_success_rate_without_reach"] = 0.0
    (out / "eval-x-wam.json").write_text(json.dumps(e))
    page = importlib.import_module("x_wam_results").render(root=tmp_path)
    assert _row(page, "mean without reach") == ["0%", "not run", "not run"]
    assert _row(page, "decoupled", nth=2) == ["not run"] * 5  # 4D metrics (after the two latency tables)


def _scripted(suite: str, tasks: dict[str, tuple[int, float | None, float]], episodes: int, wall: float) -> dict:
    """An evaluator report of the scripted expert: per task (successes, mean steps to success, control Hz)."""
    per = {t: {"success_rate": k / episodes, "episodes": episodes, "successes": k, "mean_steps_to_success": steps,
               "policy_latency_ms": 0.01, "control_hz": hz} for t, (k, steps, hz) in tasks.items()}
    n = episodes * len(tasks)
    return {"suite": suite, "tasks": per, "mean_success_rate": sum(v["success_rate"] for v in per.values()) / len(per),
            "policy": "scripted", "replan": 1, "max_steps": 300, "workers": 2, "command": "wamzoo eval ...",
            "seeds": list(range(1000000, 1000000 + episodes)), "env_steps_per_s": 1234.4,
            "episodes_per_min": 60 * n / wall, "wall_s": wall, "episodes": []}


def test_metaworld_page_rates_and_scripted_success(tmp_path):
    mw = importlib.import_module("metaworld_results")
    out = tmp_path / "results" / "metaworld"
    out.mkdir(parents=True)
    (out / "datagen.json").write_text(json.dumps({
        "command": "wamzoo data metaworld ...", "wall_s": 200.0, "total_frames": 10000, "total_episodes": 100,
        "tasks": ["reach-v3"], "episodes_per_task": 20, "workers": 2, "failed_episodes": 3, "fps": 80.0,
        "cameras": ["oblique", "top"], "size": 64}))
    (out / "scripted-mw-easy.json").write_text(json.dumps(_scripted(
        "mw-easy", {"reach-v3": (10, 41.26, 950.0), "door-open-v3": (5, 120.0, 700.4)}, 10, 30.0)))
    page = mw.render(root=tmp_path)
    # demonstrations: frames / wall seconds, episodes per minute, discarded failures
    assert _row(page, "100") == ["10000", "200", "50", "30.0", "3"]
    assert "(mw-easy, 20 demonstrations per task, 2 workers)" in page and "2 cameras (oblique, top)" in page
    # scripted expert: a summary row per suite, per-task success / steps / Hz; mw-mt10 not run
    assert _row(page, "mw-easy") == ["10", "**75%**", "2", "30", "40.0", "1234"]
    assert _row(page, "mw-mt10") == ["5", "not run", "-", "-", "-", "-"]
    assert _row(page, "reach-v3") == ["100%", "10 / 10", "41", "950"]
    assert _row(page, "door-open-v3") == ["50%", "5 / 10", "120", "700"]
    assert "### mw-mt10" not in page and "seeds 1000000..1000009" in page
    lines = page.splitlines()
    env, lock = "OMP_WAIT_POLICY=PASSIVE ", "flock /tmp/wamzoo-cpu.lock "
    assert (env + lock + "wamzoo data metaworld --suite mw-easy --episodes 20 --out data/mw-easy-rate"
            " --workers 2") in lines
    for suite, n in (("mw-easy", 10), ("mw-mt10", 5)):
        assert (env + lock + f"wamzoo eval --policy scripted --suite {suite} --episodes {n}"
                f" --json results/metaworld/scripted-{suite}.json") in lines


def test_metaworld_datagen_is_timed_from_an_empty_folder(tmp_path, monkeypatch):
    """``--run data`` empties the dataset folder (a rerun would resume), times the command and
    records the totals of the meta/info.json it wrote."""
    mw = importlib.import_module("metaworld_results")
    (tmp_path / "data" / "rate" / "raw" / "reach-v3").mkdir(parents=True)
    (tmp_path / "data" / "rate" / "stale").write_text("")
    ran = []

    def fake_run(argv, cwd, env, check):
        out = Path(cwd) / argv[argv.index("--out") + 1]
        ran.append((argv, (out / "stale").exists()))
        (out / "meta").mkdir(parents=True)
        (out / "raw" / "reach-v3").mkdir(parents=True)
        (out / "raw" / "reach-v3" / "0000003.fail.npz").write_text("")
        (out / "meta" / "info.json").write_text(json.dumps({
            "total_frames": 77, "total_episodes": 2, "fps": 80.0,
            "wamzoo": {"tasks": ["reach-v3"], "cameras": ["top"], "height": 32}}))

    monkeypatch.setattr(mw.subprocess, "run", fake_run)
    monkeypatch.setattr(report, "unlocked_runs", lambda: [])
    job = mw.data_job(2, "data/rate", root=tmp_path)
    report.run_steps([job], ["data"], lock=None, cwd=tmp_path)
    assert ran == [(["wamzoo", "data", "metaworld", "--suite", "mw-easy", "--episodes", "2", "--out", "data/rate",
                     "--workers", "2"], False)]
    rec = json.loads((tmp_path / "results" / "metaworld" / "datagen.json").read_text())
    assert rec["total_frames"] == 77 and rec["failed_episodes"] == 1 and rec["wall_s"] >= 0
    assert rec["command"].endswith("wamzoo data metaworld --suite mw-easy --episodes 2 --out data/rate --workers 2")
    assert "## Demonstration generation (mw-easy, 2 demonstrations per task" in mw.render(root=tmp_path)


def _counting_job(folder: Path, i: int, run: str | None = None) -> "report.Job":
    """Marks itself running, records how many are running, sleeps, unmarks itself."""
    code = (f"import pathlib, time; d = pathlib.Path({str(folder)!r}); me = d / 'running-{i}'; me.touch();"
            f" (d / 'seen-{i}').write_text(str(len(list(d.glob('running-*'))))); time.sleep(1.0); me.unlink()")
    return report.Job("train", ["python", "-c", code], run=run)


@pytest.mark.parametrize("n,count", [(2, 4), (1, 2)])
def test_run_jobs_n_at_a_time(tmp_path, monkeypatch, n, count):
    monkeypatch.setattr(report, "unlocked_runs", lambda: [])
    jobs = [_counting_job(tmp_path, i, run=f"runs/r{i}") for i in range(count)]
    minutes = report.run_jobs(jobs, n=n, lock=str(tmp_path / "cpu.lock"), cwd=tmp_path)
    assert len(minutes) == count and all(m > 0.01 for m in minutes)
    seen = [int((tmp_path / f"seen-{i}").read_text()) for i in range(count)]
    assert max(seen) == n and not list(tmp_path.glob("running-*"))
    for i in range(count):
        assert (tmp_path / "runs" / f"r{i}" / "train_jobs.txt").read_text() == f"{n}\n"
        assert float((tmp_path / "runs" / f"r{i}" / "train_minutes.txt").read_text()) >= 0.0
    assert report.side_by_side([f"r{i}" for i in range(count)], "results/page", tmp_path) == n


def test_a_stage_2_waits_for_its_stage_1_in_the_same_group(tmp_path, monkeypatch):
    """Two side by side: the stage 2 (``after`` the first run) starts only once that run has ended, even though
    the third job would have let it start at once."""
    monkeypatch.setattr(report, "unlocked_runs", lambda: [])
    stage1, other, stage2 = (_counting_job(tmp_path, i, run=f"runs/r{i}") for i in range(3))
    stage2.after = "runs/r0"
    stage2.argv[-1] = stage2.argv[-1].replace("me.touch();", "me.touch(); assert (d / 'runs/r0/train_minutes.txt').is_file();")
    report.run_jobs([stage1, stage2, other], n=2, lock=str(tmp_path / "cpu.lock"), cwd=tmp_path)
    assert (tmp_path / "seen-2").is_file() and (tmp_path / "runs" / "r2" / "train_minutes.txt").is_file()


def test_run_steps_groups_trainings_and_stops_at_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "unlocked_runs", lambda: [])
    fail = report.Job("train", ["python", "-c", "raise SystemExit(3)"], lock=False)
    later = report.Job("eval", ["python", "-c", f"open({str(tmp_path / 'evaluated')!r}, 'w')"], lock=False)
    skipped = report.Job("eval", ["python", "-c", "raise SystemExit(4)"], lock=False, skip_if="done.txt")
    (tmp_path / "done.txt").write_text("")
    report.run_steps([skipped, later], ["eval"], cwd=tmp_path)
    assert (tmp_path / "evaluated").is_file()
    (tmp_path / "evaluated").unlink()
    with pytest.raises(subprocess.CalledProcessError):
        report.run_steps([_counting_job(tmp_path, 0), fail, later], ["train", "eval"], n=2, lock=None, cwd=tmp_path)
    assert (tmp_path / "seen-0").is_file()  # the job running beside the failure ran to its end
    assert not (tmp_path / "evaluated").exists()  # later steps did not run


def test_a_page_without_trainings_has_no_minutes_option(tmp_path, capsys):
    mw = importlib.import_module("metaworld_results")
    assert mw.main(["--out", str(tmp_path / "metaworld.md")]) == 0
    assert "## Commands" in (tmp_path / "metaworld.md").read_text()
    with pytest.raises(SystemExit):
        mw.main(["--minutes", "5", "--out", str(tmp_path / "other.md")])


def test_harmo_gate_accuracy_on_held_out_metaworld_windows(mw_dataset, tmp_path):
    """``harmo_wam_results.py gate``: a saved HarmoWAM policy scored on a Meta-World dataset's windows."""
    pytest.importorskip("wamzoo_harmo_wam")
    from wamzoo.recipes import compose
    from wamzoo.testing import tiny_policy

    harmo = importlib.import_module("harmo_wam_results")
    data = [f"data.root={mw_dataset}", "data.size=32", "data.episodes=null", "data.suite=null",
            "data.tasks=[reach-v3,drawer-close-v3]"]
    # an untrained policy with the dataset's statistics (a saved policy must carry them)
    policy, _ = tiny_policy("harmo-wam", data + ["policy.world_model.num_layers=1", "policy.codec.patch=4"])
    policy.config["recipe"] = compose("harmo-wam", data).to_dict()
    folder = policy.save_pretrained(tmp_path / "harmo")
    rep = harmo.gate_accuracy(str(folder), str(mw_dataset), batch_size=8)
    assert rep["windows"] > 0 and 0.0 <= rep["accuracy"] <= 1.0
    assert rep["seed_range"] == [0, 1] and rep["k"] == 20
    assert set(rep["per_task_accuracy"]) == {"reach-v3", "drawer-close-v3"}


def test_aha_page_breaks_latency_into_parts_and_bounds_the_ratio(tmp_path):
    out = tmp_path / "results" / "aha_wam"
    out.mkdir(parents=True)
    parts = lambda e, p, d, f: {"part_encode_ms": e, "part_prefill_ms": p, "part_denoise_ms": d,  # noqa: E731
                                "part_finish_ms": f}
    fast = {"target": "fast-wam", "params_m": 1.0, "median_ms": 100.0, **parts(2.0, 60.0, 37.0, 1.0)}
    aha = {"target": "aha-wam", "params_m": 1.0, "median_ms": 40.0, "executor_ms": 40.0, "amortised_ms": 70.0,
           "planner_ms": 60.0, "first_over_executor_ms": 2.5, "first_over_amortised_ms": 100 / 70,
           "first_over_planner_ms": 100 / 60, **parts(2.0, 12.0, 25.0, 1.0)}
    (out / "latency.json").write_text(json.dumps([fast, aha]))
    page = importlib.import_module("aha_wam_results").render(root=tmp_path)
    assert _row(page, "10 denoising steps") == ["37.0", "25.0"]
    # free steps: 100 / (2 + 12 + 1) = 6.67x; 4.5x needs the steps within 100 / 4.5 - 15 = 7.2 ms
    assert "100.0 / 15.0 = **6.67x**" in page and "at most 7.2 ms (20% of Fast-WAM's)" in page


def test_aha_page_counts_the_episodes_a_frame_lag_changed(tmp_path):
    out = tmp_path / "results" / "aha_wam"
    out.mkdir(parents=True)
    def episodes(wins):
        return [{"task": "reach-v3", "seed": 1000 + i, "success": w} for i, w in enumerate(wins)]

    for name, wins in (("eval-aha-wam.json", [True, False, True]), ("eval-aha-wam-lag4.json", [False, False, True])):
        (out / name).write_text(json.dumps({**_eval({"reach-v3": sum(wins) / 3}, 50.0), "episodes": episodes(wins)}))
    page = importlib.import_module("aha_wam_results").render(root=tmp_path)
    assert _row(page, "episodes whose outcome the lag changed") == ["1 of 3", "-", "-"]


def test_leaderboard_reads_its_files_borrows_same_budget_pages_and_lists_commands(tmp_path):
    board = importlib.import_module("leaderboard")
    out = tmp_path / "results" / "leaderboard"
    out.mkdir(parents=True)
    (out / "eval-fast-wam-ans.json").write_text(json.dumps(
        {**_eval({"reach-v3": 0.5, "drawer-close-v3": 1.0}, 10.0), "command": "wamzoo eval runs/fast-wam-ans ..."}))
    (out / "latency.json").write_text(json.dumps([_lat("fast-wam-ans", 30.0)]))
    (tmp_path / "results" / "fast_wam").mkdir()
    (tmp_path / "results" / "fast_wam" / "eval-fast-wam.json").write_text(
        json.dumps(_eval({"reach-v3": 0.25, "drawer-close-v3": 0.75}, 9.0)))
    _run_folder(tmp_path, "fast-wam-ans", [2.0, 1.0], "39.5\n", "2\n")
    records = {r["row"]: r for r in board.board(tmp_path)}
    assert records["fast-wam-ans"]["mean_success"] == 0.75 and records["fast-wam-ans"]["steps"] == 50
    assert records["fast-wam-ans"]["latency_ms"] == 30.0 and records["fast-wam-ans"]["train_minutes"] == 39.5
    shutil.rmtree(tmp_path / "runs")  # runs/ is not committed: a fresh clone reads the record the page kept
    kept = {r["row"]: r for r in board.board(tmp_path)}["fast-wam-ans"]
    assert (kept["steps"], kept["train_minutes"]) == (50, 39.5)
    assert records["fast-wam"]["from_page"] == "results/fast_wam/eval-fast-wam.json"
    assert records["fast-wam"]["steps"] is None                     # the page recorded no training of its run
    (tmp_path / "results" / "fast_wam" / "train-fast-wam.json").write_text(json.dumps({"steps": 7, "minutes": 40.0}))
    assert board.board(tmp_path)[0]["steps"] == 7                   # now it has: the page's run's steps
    assert records["x-wam"]["mean_success"] is None  # another budget on its page: never borrowed
    page = board.render(root=tmp_path)
    assert _row(page, "`fast-wam-ans`")[:5] == ["mix", "Fast-WAM + X-WAM", "50%", "100%", "**75%**"]
    assert _row(page, "`fast-wam` † ‡")[4] == "**50%**" and "not run" in page
    # a row whose record predates the data's action bound trained on unclipped actions (‡); this run did not
    assert not kept["unclipped_actions"] and records["fast-wam"]["unclipped_actions"] and "‡ trained on" in page
    from wamzoo.journal import EvalJournal                # an evaluation under way: how far it got, no numbers

    EvalJournal(out / "eval-x-wam-sync.json.partial", {"policy": "p"}).record(
        [{"task": "reach-v3", "seed": s, "success": True} for s in (1000000, 1000001)], 60.0)
    assert _row(board.render(root=tmp_path), "`x-wam-sync`")[2:5] == ["not run", "not run", "**2/40 evaluated**"]
    jobs = board.jobs(40)
    trains = [j.argv for j in jobs if j.step == "train"]
    assert ["wamzoo", "train", "harmo-wam-stage1", "trainer.max_minutes=20"] in trains
    assert ["wamzoo", "train", "harmo-wam-on-fast-wam", "trainer.max_minutes=20"] in trains
    assert sum(a[2] == "harmo-wam-stage1" for a in trains) == 1  # one stage 1 for every HarmoWAM row
    assert board.jobs(40, ["bc"])[0].argv == ["wamzoo", "train", "bc", "trainer.max_minutes=40"]
    hour = board.jobs(40, ["fast-wam-front-hour"])[0].argv  # a row with its own budget keeps it
    assert hour == ["wamzoo", "train", "fast-wam-front-hour", "trainer.max_minutes=60"]
    staged = [j.argv for j in board.jobs(40, ["harmo-wam-front-hour"]) if j.step == "train"]
    assert staged == [["wamzoo", "train", "harmo-wam-front-stage1", "trainer.max_minutes=20"],  # the board's half
                      ["wamzoo", "train", "harmo-wam-front-hour", "trainer.max_minutes=40"]]  # the rest of its hour
    latency = board.jobs(40, ["bc"])[-1].argv  # a subset of rows still times every recipe: the file stays whole
    assert latency[:3] == ["wamzoo", "bench", "latency"] and {"bc", "fast-wam", "x-wam-sync"} <= set(latency)


def test_leaderboard_holds_the_regimes_with_their_paired_difference(tmp_path):
    board = importlib.import_module("leaderboard")
    out = tmp_path / "results" / "depth"
    out.mkdir(parents=True)
    for recipe, wins in (("fast-wam-depth-reach", [True, True, False, True]), ("fast-wam-reach", [False, True, False,
                                                                                                   False])):
        (out / f"eval-{recipe}.json").write_text(json.dumps({**_eval({"reach-v3": sum(wins) / 4}, 50.0), "episodes": [
            {"task": "reach-v3", "seed": 1000 + i, "success": w} for i, w in enumerate(wins)]}))
    records = {r["regime"]: r for r in board.regime_rows(tmp_path)}
    assert records["depth"]["mean_with"] == 0.75 and records["depth"]["mean_without"] == 0.25
    assert records["depth"]["difference"]["only_a"] == 2 and records["depth"]["difference"]["difference"] == 0.5
    assert records["ovcr"]["difference"] is None
    page = board.render(root=tmp_path)
    assert _row(page, "[depth](depth.md)")[2:5] == ["75%", "25%", "**+50.0** [+0.0, +100.0]"]
    assert _row(page, "[ovcr](ovcr.md)")[4] == "not run"


@pytest.mark.render
def test_goal_reading_compares_the_policys_first_actions_with_the_experts(mw_dataset, capsys):
    from wamzoo.data.dataset import MetaWorldDataModule
    from wamzoo.policy import WAMPolicy
    from wamzoo.recipes import compose

    goal = importlib.import_module("goal_reading")
    info = MetaWorldDataModule(str(mw_dataset), horizon=8, n_obs=2, n_future=1, frame_stride=4).info()
    policy = WAMPolicy.from_config(compose("mw-tiny").policy, info).eval()
    pred, rec = goal.first_actions(policy, mw_dataset, "reach-v3", 5)
    assert pred.shape == rec.shape == (1, 3) and np.abs(rec).max() <= 1   # one episode of reach in the fixture
    with pytest.raises(SystemExit, match="no episodes"):
        goal.first_actions(policy, mw_dataset, "door-open-v3", 5)
