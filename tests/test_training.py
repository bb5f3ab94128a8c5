"""Training with Lightning: checkpoints, logs, resume, DDP on two CPU processes."""

import csv
import os
import subprocess
import sys

import pytest
import torch

from wamzoo.recipes import compose
from wamzoo.training import load_checkpoint, make_datamodule, train


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
           "trainer.max_minutes=30", "trainer.lr_decay=budget", "--out", str(tmp_path)]  # rank 0's clock, broadcast
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


def test_budget_decay_follows_the_clock_and_refuses_unknown_modes():
    """``trainer.lr_decay=budget``: the cosine reaches its floor when ``max_minutes`` ends, whatever the step count
    (a resumed timer included); ``steps`` ignores the clock; an unknown mode is refused at composition."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import Timer

    from wamzoo.errors import RecipeError
    from wamzoo.training import WAMModule

    def rates(decay, elapsed_s):
        recipe = compose("tiny-mot", ["trainer.max_steps=1000", "trainer.max_minutes=10", "trainer.warmup_steps=10",
                                      f"trainer.lr_decay={decay}"])
        data = make_datamodule(recipe)
        module = WAMModule(recipe.to_dict(), data.info().to_dict(with_stats=True))
        timer = Timer(duration={"minutes": 10})
        timer.load_state_dict({"time_elapsed": {"train": elapsed_s}})  # what a resumed run's timer holds
        module._trainer = SimpleNamespace(callbacks=[timer])
        sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
        return [f(100) for f in sched.lr_lambdas]  # each parameter group's factor at step 100

    assert rates("budget", 600.0) == pytest.approx([0.1, 0.1])  # the clock ran out at step 100 of 1000: at the floor
    assert rates("budget", 300.0) == pytest.approx([0.55, 0.55])  # half the minutes: half-way down the cosine
    assert min(rates("steps", 600.0)) > 0.95  # step 100 of 1000 whatever the clock says
    with pytest.raises(RecipeError, match="trainer.lr_decay must be one of steps, budget"):
        compose("tiny-mot", ["trainer.lr_decay=minutes"])


def test_data_parallel_ranks_draw_their_own_noise():
    """Under DDP each rank reseeds with ``seed + rank`` when fitting starts: both shards of a step drawing the same
    flow-matching noise and timesteps would halve their variety; one process keeps the run's seed untouched."""
    from types import SimpleNamespace

    from wamzoo.training import WAMModule

    recipe = compose("tiny-mot", [])
    module = WAMModule(recipe.to_dict(), make_datamodule(recipe).info().to_dict(with_stats=True))

    def draw(world_size, rank):
        torch.manual_seed(123)
        module._trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
        module.on_fit_start()
        return torch.rand(8)

    assert not torch.equal(draw(2, 0), draw(2, 1))
    assert torch.equal(draw(2, 1), draw(2, 1))
    assert torch.equal(draw(1, 0), (torch.manual_seed(123), torch.rand(8))[1])
