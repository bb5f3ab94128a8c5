"""The command line: list, info, recipe show, train, bench, doctor, new-plugin."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wamzoo.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_list_info_recipe(capsys):
    code, out = run(capsys, "list", "dit.*")
    assert code == 0 and "dit.video" in out and "dit.action" in out and "mot" not in out.split("dit.")[0]
    code, out = run(capsys, "list", "--recipes")
    assert code == 0 and "tiny-mot" in out
    code, out = run(capsys, "info", "mot")
    assert code == 0 and "mask" in out and "grad_checkpoint" in out
    code, out = run(capsys, "info", "mtoo")
    assert code == 2 and "Did you mean" in out
    code, out = run(capsys, "recipe", "show", "tiny-mot", "trainer.max_steps=3")
    assert code == 0 and "max_steps: 3" in out
    code, out = run(capsys, "recipe", "show", "tiny-mot", "trainer.max_stepz=3")
    assert code == 2 and "max_stepz" in out


def test_train_and_bench(capsys, tmp_path):
    code, out = run(capsys, "train", "tiny-mot", "trainer.max_steps=4", "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "tiny-mot" / "checkpoints" / "last.ckpt").is_file()
    code, out = run(capsys, "export", str(tmp_path / "tiny-mot"), str(tmp_path / "exported"), "--name", "me/tiny")
    assert code == 0 and 'wamzoo.load("me/tiny")' in (tmp_path / "exported" / "README.md").read_text()
    code, out = run(capsys, "export", str(tmp_path / "nowhere"), str(tmp_path / "x"))
    assert code == 2 and "unknown pretrained policy" in out
    js = tmp_path / "lat.json"
    code, out = run(capsys, "bench", "latency", str(tmp_path / "tiny-mot" / "checkpoints" / "last.ckpt"),
                    "tiny-mot", "--repeats", "3", "--warmup", "1", "--json", str(js))
    rows = json.loads(js.read_text())
    assert code == 0 and [r["source"] for r in rows] == ["trained", "recipe"]
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] for r in rows)
    assert rows[0]["ratio_to_first"] == 1.0
    for r in rows:  # where the time goes: the parts of predict() add up to (at most) the call
        parts = [r[f"part_{k}_ms"] for k in ("encode", "prefill", "denoise", "finish")]
        assert min(parts) >= 0 and r["part_denoise_ms"] > 0 and sum(parts) <= 1.5 * r["p90_ms"]
    assert "where a call's time goes" in out
    js = tmp_path / "train.json"
    code, out = run(capsys, "bench", "train", "tiny-mot", "--steps", "2", "--json", str(js))
    (row,) = json.loads(js.read_text())
    assert code == 0 and row["samples_per_s"] > 0 and 0 < row["mfu"] < 1 and row["flops_per_step"] > 0


def test_doctor(capsys):
    code, out = run(capsys, "doctor")
    assert "wamzoo" in out and "torch" in out


@pytest.mark.slow
def test_new_plugin_installs_lists_trains_and_resumes(tmp_path):
    """The acceptance path of a new contributor: new-plugin -> pip install -> list -> its tests pass."""
    assert main(["new-plugin", "mywam", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "mywam"
    assert main(["new-plugin", "mywam", "--dir", str(tmp_path)]) == 2  # exists: clear error, nothing lost
    # installed into a private target folder (not the shared environment), found through PYTHONPATH
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
           str(folder)]
    subprocess.run(pip, check=True, capture_output=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "wamzoo.cli", "list", "mywam*"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "mywam.action" in out
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "3 passed" in proc.stdout
