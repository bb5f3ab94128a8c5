"""benchmarks/report.py: pages rendered from fabricated results, and the job runner."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

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
        {"recipe": {"name": recipe, "trainer": {"max_steps": 2400, "max_minutes": 40.0, "threads": 1}}}))
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


@pytest.mark.parametrize("script", ["fast_wam_results", "x_wam_results", "aha_wam_results", "harmo_wam_results"])
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
    assert _row(page, "decoupled", nth=1) == ["not run"] * 5  # 4D metrics


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
    assert report.side_by_side([f"r{i}" for i in range(count)], tmp_path) == n


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
