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


def test_second_stage_initialises_and_freezes(tmp_path):
    """Two-stage training: stage 2 loads stage 1's world model and keeps it frozen."""
    stage1 = train(compose("tiny-mot", ["trainer.max_steps=4"]), out_dir=tmp_path / "s1")
    over = ["trainer.max_steps=3", f"trainer.init_from={stage1}", "trainer.init_prefixes=[world_model]",
            "trainer.freeze=[world_model]", "policy.world_model.dim=48"]
    with pytest.raises(ValueError, match="absent or differently shaped"):  # another width: not stage 1's model
        train(compose("tiny-mot", over), out_dir=tmp_path / "bad")
    over = over[:4]
    run = train(compose("tiny-mot", over), out_dir=tmp_path / "s2")
    before = load_checkpoint(stage1 / "checkpoints" / "last.ckpt").state_dict()
    after = load_checkpoint(run / "checkpoints" / "last.ckpt").state_dict()
    wm = [k for k in before if k.startswith("world_model.")]
    assert wm and all(torch.equal(before[k], after[k]) for k in wm)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("action_expert."))
    with pytest.raises(ValueError, match="no parameter of the policy starts with 'world_modle'"):
        train(compose("tiny-mot", ["trainer.max_steps=1", "trainer.freeze=[world_modle]"]), out_dir=tmp_path / "x")
