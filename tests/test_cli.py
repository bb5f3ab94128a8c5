"""The command line: list, info, recipe show, train, bench, doctor, new-plugin."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
    code, out = run(capsys, "bench", "latency", "fast-wam", "--repeats", "2", "--warmup", "1", "--device", "cpu",
                    "--dtype", "bfloat16", "--json", str(js))
    assert code == 0 and [(r["device"], r["dtype"]) for r in json.loads(js.read_text())] == [("cpu", "bfloat16")]
    if not torch.cuda.is_available():
        code, out = run(capsys, "bench", "latency", "tiny-mot", "--device", "cuda")
        assert code == 2 and "no CUDA GPU" in out and "--device cpu" in out
    js = tmp_path / "train.json"
    code, out = run(capsys, "bench", "train", "tiny-mot", "--steps", "2", "--json", str(js))
    (row,) = json.loads(js.read_text())
    assert code == 0 and row["samples_per_s"] > 0 and 0 < row["mfu"] < 1 and row["flops_per_step"] > 0


def test_doctor(capsys):
    code, out = run(capsys, "doctor")
    assert "wamzoo" in out and "torch" in out


def test_list_shows_every_kind_with_wildcards_and_shorthands(capsys):
    """Captured (not a terminal): plain `kind<TAB>name` lines."""
    code, out = run(capsys, "list")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and all(len(r) == 2 for r in rows)
    assert {k for k, _ in rows} >= {"world_model", "action_expert", "coupling", "scheduler", "codec", "data",
                                    "recipe", "pretrained", "converter"}
    assert ["recipe", "tiny-mot"] in rows and ["world_model", "dit.video"] in rows
    code, out = run(capsys, "list", "--kind", "pretrained", "fast*")
    assert out.splitlines() and all(line.startswith("pretrained\tfast-wam.") for line in out.splitlines())
    assert "pretrained\tfast-wam.mw-easy-small" in out.splitlines()
    assert run(capsys, "list", "--pretrained", "fast*")[1] == out  # the shorthand
    code, out = run(capsys, "list", "--recipes", "tiny*")
    assert out.splitlines() == ["recipe\ttiny-mot"]
    code, out = run(capsys, "list", "recipe:mw-*")
    assert out.splitlines() == ["recipe\tmw-tiny"]
    code, out = run(capsys, "list", "--kind", "recipe", "--kind", "converter", "*-wam*")
    assert {line.split("\t")[0] for line in out.splitlines()} == {"recipe", "converter"}
    code, out = run(capsys, "list", "fast-wam/mw-easy-*")  # a slash reads as a dot in patterns too
    assert out.splitlines() == ["pretrained\tfast-wam.mw-easy-small"]
    code, captured = main(["list", "nothing-is-called-this*"]), capsys.readouterr()
    assert code == 0 and captured.out == "" and "nothing matched" in captured.err


def test_list_on_a_terminal_is_a_table_and_plain_on_request(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out = run(capsys, "list", "--pretrained", "harmo*")
    assert code == 0 and "harmo-wam.mw-easy-small" in out and "\t" not in out and "pretrained" in out
    code, out = run(capsys, "list", "--pretrained", "harmo*", "--plain")
    assert out == "pretrained\tharmo-wam.mw-easy-small\n"


def test_piped_list_is_whole_lines_that_grep_finds():
    """`wamzoo list --pretrained | grep mw-easy-small`: every name whole, no table, no colour, no "…"."""
    cmd = [sys.executable, "-m", "wamzoo.cli", "list", "--pretrained"]
    env = {**os.environ, "COLUMNS": "40", "FORCE_COLOR": "", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=True)
    lines = proc.stdout.splitlines()
    assert "\x1b" not in proc.stdout and "\u2026" not in proc.stdout and "\u2501" not in proc.stdout
    assert all(len(line.split("\t")) == 2 and line.startswith("pretrained\t") for line in lines)
    names = {line.split("\t")[1] for line in lines}
    assert {"fast-wam.mw-easy-small", "x-wam.mw-easy-small", "aha-wam.mw-easy-small", "harmo-wam.mw-easy-small",
            "lerobot.fastwam_base", "fast-wam.libero-2cam224"} <= names
    grep = subprocess.run(" ".join(cmd) + " | grep mw-easy-small | cut -f2", shell=True, capture_output=True,
                          text=True, env=env, timeout=300)
    assert sorted(grep.stdout.split()) == ["aha-wam.mw-easy-small", "fast-wam.mw-easy-small",
                                           "harmo-wam.mw-easy-small", "x-wam.mw-easy-small"]


def test_info_takes_any_kind_of_name(capsys):
    code, out = run(capsys, "info", "fast-wam/mw-easy-small")
    assert code == 0 and "pretrained" in out and "repo_id: local:" in out and "mw-easy" in out
    code, out = run(capsys, "info", "converter:fast-wam.release")
    assert code == 0 and "wamzoo_fast_wam.convert:convert_release" in out
    code, out = run(capsys, "info", "recipe:tiny-mot")
    assert code == 0 and "name: tiny-mot" in out and "world_model:" in out
    code, out = run(capsys, "info", "recipe:tiny-mto")
    assert code == 2 and "Did you mean: recipe:tiny-mot" in out


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
    assert "4 passed" in proc.stdout  # registration, training + resume, prediction, conformance
