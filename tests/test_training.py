"""Training with Lightning: checkpoints, logs, resume, DDP on two CPU processes."""

import csv
import os
import subprocess
import sys

import pytest
import torch

from wamzoo.recipes import compose
from wamzoo.training import load_checkpoint, train


def losses(run):
    with open(run / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def test_train_checkpoint_resume(tmp_path):
    run = train(compose("tiny-mot", ["trainer.max_steps=30"]), out_dir=tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (run / "tb").is_dir()
    first = losses(run)
    assert len(first) >= 5 and sum(first[-2:]) < sum(first[:2])
    assert torch.load(ckpt, weights_only=True)["global_step"] == 30
    run = train(compose("tiny-mot", ["trainer.max_steps=40"]), out_dir=tmp_path)
    assert torch.load(ckpt, weights_only=True)["global_step"] == 40
    policy = load_checkpoint(ckpt)
    assert policy.tasks == ["task-0", "task-1"] and not policy.training


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "wamzoo.cli", "train", "tiny-mot", "trainer.max_steps=6", "trainer.strategy=ddp",
           "trainer.devices=2", "trainer.batch_size=4", "trainer.ckpt_every=3", "trainer.threads=1",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = tmp_path / "tiny-mot" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 6
    assert "world_size=2" in proc.stderr + proc.stdout or "distributed_backend=gloo" in proc.stderr + proc.stdout
