"""Mistakes users make (issue 15): each is refused with one paragraph naming the problem and the fix,
the CLI exits non-zero without a traceback, and the files that existed before are unchanged."""

import csv
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from wamzoo import cli
from wamzoo.batch import Batch
from wamzoo.errors import BatchError, LoadError, StatsError
from wamzoo.recipes import compose
from wamzoo.training import train

POLICY = "fast-wam/mw-easy-small"  # 2 views of 64x64, state of 4, shipped with the Fast-WAM plugin


class Evil:
    """Not a tensor: a checkpoint holding it would run code when unpickled."""


def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run(capsys, monkeypatch):
    """``wamzoo ARGS`` in-process: (exit code, output as one line); never a traceback."""
    monkeypatch.setattr(cli.console, "width", 1000)  # no wrapping inside long temporary paths

    def call(*argv):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        return code, " ".join((out.out + out.err).split())

    return call


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny-mot run (3 steps, a metrics row per step): ``RUNS/tiny-mot``."""
    runs = tmp_path_factory.mktemp("runs")
    return train(compose("tiny-mot", ["trainer.max_steps=3", "trainer.log_every=1"]), out_dir=runs)


def copy_run(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "tiny-mot")
    return tmp_path / "tiny-mot"


def rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def policy():
    import wamzoo

    return wamzoo.load(POLICY)


def observation(rgb=(1, 1, 2, 3, 64, 64), state=4) -> Batch:
    return Batch(rgb=torch.zeros(rgb), state=torch.zeros(1, state), task_id=torch.zeros(1, dtype=torch.long))


# -- 1. resume appends to the metrics --------------------------------------------------------------------
def test_1_resume_appends_to_the_metrics(trained, tmp_path):
    run_dir = copy_run(trained, tmp_path)
    before = rows(run_dir)
    train(compose("tiny-mot", ["trainer.max_steps=5", "trainer.log_every=1"]), out_dir=tmp_path)
    after = rows(run_dir)
    assert after[: len(before)] == before and len(after) > len(before)
    assert max(int(r["step"]) for r in after) == 4


# -- 2. a run of another configuration is refused before anything is touched ------------------------------
def test_2_training_refuses_a_run_of_another_configuration(trained, tmp_path, run):
    run_dir = copy_run(trained, tmp_path)
    before = tree(run_dir)
    code, out = run("train", "tiny-mot", "policy.world_model.dim=48", "policy.world_model.num_heads=3",
                    "--out", tmp_path)
    assert code == 2 and f"{run_dir} holds a run of another configuration" in out
    assert "policy.world_model.dim: 32 there, 48 here" in out and "use another --out" in out
    assert f"rm -r {run_dir}" in out and tree(run_dir) == before


# -- 3. export refuses a folder that is not empty, and --force leaves no stale file -----------------------
def test_3_export_refuses_a_folder_that_is_not_empty(tmp_path, run):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"mean_success_rate": 0.5}))
    exp = tmp_path / "EXP"
    assert run("export", POLICY, exp, "--results", results)[0] == 0
    before = tree(exp)
    code, out = run("export", "x-wam/mw-easy-small", exp)
    assert code == 2 and f"{exp} is not empty" in out and "--force" in out and tree(exp) == before
    (exp / "notes.txt").write_text("mine")
    assert run("export", "x-wam/mw-easy-small", exp, "--force")[0] == 0
    assert sorted(tree(exp)) == ["README.md", "config.json", "model.safetensors", "notes.txt", "stats.json"]
    assert "x-wam" in (exp / "config.json").read_text() and (exp / "notes.txt").read_text() == "mine"


# -- 4, 5. observations the policy was not trained on ----------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1, 2, 3, 32, 32), (1, 1, 2, 3, 128, 128), (1, 1, 2, 3, 64, 96),
                                   (1, 1, 1, 3, 64, 64)])
def test_4_frames_of_another_size_or_view_count_are_refused(policy, shape):
    with pytest.raises(BatchError) as err:
        policy.predict_action(observation(rgb=shape))
    assert f"rgb must be [B, T, 2, 3, 64, 64] for this policy, got {shape}" in str(err.value)
    assert f"its 2 view(s) ({', '.join(policy.info.cameras)}) at 64x64 pixels" in str(err.value)


def test_4_a_state_of_another_width_is_refused(policy):
    with pytest.raises(BatchError, match=r"state must be \[B, 4\] for this policy, got \(1, 3\)"):
        policy.predict_action(observation(state=3))


@pytest.mark.parametrize("field, index, value", [("state", (0, 2), float("nan")),
                                                  ("rgb", (0, 0, 1, 2, 30, 40), float("inf"))])
def test_5_nan_or_inf_in_an_observation_is_refused(policy, field, index, value):
    obs = observation()
    getattr(obs, field)[index] = value
    with pytest.raises(BatchError) as err:
        policy.predict_action(obs)
    assert f"{field} holds {value} at index {list(index)}" in str(err.value) and "finite" in str(err.value)


# -- 6. statistics: every normalised quantity needs them; `wamzoo data stats` recomputes them ------------
@pytest.mark.parametrize("stats", [{}, {"action": "keep"}])
def test_6_a_policy_folder_without_statistics_is_refused(tmp_path, stats):
    import wamzoo
    from wamzoo.hub import resolve

    folder = tmp_path / "policy"
    shutil.copytree(resolve(POLICY).repo_id.removeprefix("local:"), folder)
    full = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({k: full[k] for k in stats}))
    before = tree(folder)
    with pytest.raises(StatsError) as err:
        wamzoo.load(str(folder))
    missing = "'action', 'state'" if not stats else "'state'"
    assert f"{folder / 'stats.json'}: no statistics for {missing}" in str(err.value)
    assert "unexpected" not in str(err.value) and "wamzoo export" in str(err.value) and tree(folder) == before


def test_6_data_without_statistics_for_the_state_is_refused():
    from wamzoo.policy import WAMPolicy
    from wamzoo.training import make_datamodule

    recipe = compose("tiny-mot")
    info = make_datamodule(recipe).info()
    del info.stats["state"]
    with pytest.raises(StatsError, match="no statistics for 'state'.*stats.json.*`wamzoo data stats DIR --force`"):
        WAMPolicy.from_config(recipe.policy, info)


def test_6_data_stats_recomputes_a_datasets_statistics(mw_dataset, tmp_path, run):
    data = tmp_path / "ds"
    shutil.copytree(mw_dataset, data)
    stats = data / "meta" / "stats.json"
    original = stats.read_bytes()
    stats.unlink()
    code, out = run("data", "stats", data)
    assert code == 0 and json.loads(stats.read_bytes()) == json.loads(original)
    before = tree(data)
    code, out = run("data", "stats", data)
    assert code == 2 and f"{stats} exists; pass --force" in out and tree(data) == before


# -- 7, 8. command-line overrides ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "tiny-mot", "trainer.max_steps", "5"], "override 'trainer.max_steps' has no '='"),
    (["recipe", "show", "mw-tiny", "trainer.threads"], "override 'trainer.threads' has no '='"),
    (["recipe", "show", "tiny-mot", "trainer.max_steps=abc"], "override trainer.max_steps=abc: key 'trainer.max_steps'"),
])
def test_7_a_bad_override_is_blamed_on_the_command_line(argv, message, run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run(*argv)
    assert code == 2 and message in out and ".yaml" not in out and not list(tmp_path.iterdir())


def test_8_overrides_may_follow_options(tmp_path, run):
    code, out = run("train", "tiny-mot", "--out", tmp_path, "trainer.max_steps=1")
    assert code == 0
    assert torch.load(tmp_path / "tiny-mot" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1


# -- 9. every checkpoint read refuses a pickle that is not weights-only -----------------------------------
@pytest.fixture
def evil(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": Evil()}, path)
    return path


@pytest.mark.parametrize("how", ["eval", "eval run", "train resume", "init_from", "bench", "action_init", "convert"])
def test_9_checkpoints_that_are_not_weights_only_are_refused(how, evil, trained, tmp_path, run, capsys):
    planted = copy_run(trained, tmp_path)
    shutil.copyfile(evil, planted / "checkpoints" / "last.ckpt")
    before = tree(tmp_path)
    if how == "action_init":
        from wamzoo_fast_wam.action_init import main

        with pytest.raises(SystemExit) as exit:
            main(["--video", str(evil), "--out", str(tmp_path / "backbone.safetensors")])
        out = capsys.readouterr().err
        code = exit.value.code
    elif how == "convert":
        from wamzoo.hub import load_weights_only

        with pytest.raises(LoadError) as err:
            load_weights_only(evil)
        code, out = 2, str(err.value)
    else:
        code, out = run(*{"eval": ["eval", evil], "eval run": ["eval", planted],
                          "train resume": ["train", "tiny-mot", "--out", tmp_path],
                          "init_from": ["train", "tiny-mot", f"trainer.init_from={evil}", "--out", tmp_path / "x"],
                          "bench": ["bench", "latency", evil]}[how])
    assert code == 2 and "is not a weights-only pickle (it would import" in out and "Evil" in out
    assert "weights_only=False" not in out and "\x1b" not in out and "trust" not in out
    assert tree(tmp_path) == before


# -- 10. a truncated file is named, with the fix -----------------------------------------------------------
def test_10_a_truncated_episode_is_named_and_recorded_again(mw_dataset, tmp_path, run):
    data = tmp_path / "ds"
    shutil.copytree(mw_dataset, data)
    bad = next((data / "raw" / "reach-v3").glob("*.npz"))
    bad.write_bytes(bad.read_bytes()[:1000])
    before = tree(data)
    argv = ["data", "metaworld", "--tasks", "reach-v3,drawer-close-v3", "--episodes", 1, "--size", 32,
            "--workers", 0, "--out", data]
    code, out = run(*argv)
    assert code == 2 and f"{bad} is truncated or corrupt" in out and "delete it and rerun" in out
    assert tree(data) == before
    bad.unlink()
    assert run(*argv)[0] == 0 and tree(data)[str(bad.relative_to(data))] == tree(mw_dataset)[str(bad.relative_to(data))]


def test_10_a_truncated_frames_file_is_named_before_training(mw_dataset, tmp_path, run):
    data = tmp_path / "ds"
    shutil.copytree(mw_dataset, data)
    bad = data / "arrays" / "observation.images.top.npy"
    bad.write_bytes(bad.read_bytes()[:5000])
    before = tree(tmp_path)
    code, out = run("train", "mw-tiny", f"data.root={data}", "data.suite=null", "data.size=32",
                    "trainer.max_steps=1", "--out", tmp_path / "runs")
    assert code == 2 and f"{bad} is truncated or corrupt" in out and "delete it and rerun" in out
    assert "wamzoo data metaworld" in out and tree(tmp_path) == before


# -- 11-13, 15. evaluation arguments are checked before any episode ---------------------------------------
@pytest.mark.parametrize("episodes", [0, -3])
def test_11_eval_needs_one_episode_or_more(episodes, run):
    code, out = run("eval", POLICY, "--episodes", episodes)
    assert code == 2 and f"(--episodes) must be 1 or more, got {episodes}" in out


def test_12_eval_of_a_run_with_no_checkpoint_yet(trained, tmp_path, run):
    run_dir = copy_run(trained, tmp_path)
    shutil.rmtree(run_dir / "checkpoints")
    before = tree(tmp_path)
    code, out = run("eval", run_dir)
    assert code == 2 and f"{run_dir} is a training run with no checkpoint yet" in out and "config.json" not in out
    assert tree(tmp_path) == before


@pytest.mark.parametrize("option", ["--json", "--video"])
def test_13_unwritable_outputs_are_refused_before_evaluating(option, tmp_path, run):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    code, out = run("eval", POLICY, option, blocker / "out", "--workers", 0)
    assert code == 2 and f"{option} {blocker / 'out'} cannot be written: {blocker} is a file" in out
    assert "success" not in out and tree(tmp_path) == {"a-file": b"mine"}


def test_15_an_unknown_task_lists_the_policys_own_tasks(run):
    code, out = run("eval", POLICY, "--tasks", "no-such-task")
    assert code == 2 and "the policy was not trained on ['no-such-task']; its tasks are reach-v3," in out
    assert "assembly-v3" not in out


# -- 14. Ctrl-C while generating data ----------------------------------------------------------------------
def test_14_ctrl_c_keeps_the_finished_episodes_and_says_so(tmp_path, run, monkeypatch):
    from wamzoo.data import generate

    calls = []

    def episode(out, task, seed, *args):
        calls.append(seed)
        if len(calls) > 1:
            raise KeyboardInterrupt
        path = tmp_path / "ds" / "raw" / task / f"{seed:07d}.ok.npz"
        path.parent.mkdir(parents=True)
        np.savez_compressed(path, reward=np.zeros(3))
        return task, seed, True, 3

    monkeypatch.setattr(generate, "_episode_job", episode)
    code, out = run("data", "metaworld", "--tasks", "reach-v3", "--episodes", 3, "--workers", 0,
                    "--out", tmp_path / "ds")
    raw = tmp_path / "ds" / "raw"
    assert code == 130 and out.endswith(f"interrupted: 1 finished episodes kept in {raw}; rerun the same command"
                                        " to resume")  # after the progress bar
    assert sorted(tree(raw)) == ["generate.lock", "reach-v3/0000000.ok.npz", "settings.json"]


def test_14_workers_leave_ctrl_c_to_the_parent(tmp_path):
    """A real Ctrl-C (SIGINT to the process group) with worker processes: one line, no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "wamzoo.cli", "data", "metaworld", "--tasks", "reach-v3",
                             "--episodes", "200", "--size", "16", "--workers", "1", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "COLUMNS": "300"},
                            # a suite started in the background (`cmd &`) ignores SIGINT, and so would the child
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not list(out.glob("raw/reach-v3/*.npz")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    kept = len(list(out.glob("raw/reach-v3/*.npz")))
    assert proc.returncode == 130 and "Traceback" not in stdout + stderr, stdout[-2000:] + stderr[-2000:]
    assert stdout.strip().splitlines()[-1] == (f"interrupted: {kept} finished episodes kept in {out / 'raw'}; rerun"
                                               " the same command to resume")
