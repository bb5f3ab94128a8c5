"""The weights' moving average (``trainer.ema``): kept per optimiser step, saved in checkpoints, restored on
resume, and the weights a run is loaded, exported and initialised with."""

import pytest
import torch

from wamzoo.ema import EMA, KEY
from wamzoo.recipes import compose
from wamzoo.training import load_checkpoint, source_state, train


def test_a_run_is_loaded_with_its_moving_average(tmp_path):
    run = train(compose("tiny-mot", ["trainer.max_steps=12", "trainer.ema=0.5"]), out_dir=tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    average, live = ckpt[KEY]["weights"], ckpt["state_dict"]
    assert ckpt[KEY]["decay"] == 0.5 and set(average) <= set(live)
    moved = [k for k in average if not torch.equal(average[k], live[k])]
    assert len(moved) > len(average) // 2          # the average lags the trained weights
    policy = load_checkpoint(run / "checkpoints" / "last.ckpt")
    for key, value in policy.state_dict().items():
        torch.testing.assert_close(value, average.get(f"policy.{key}", live[f"policy.{key}"]), atol=0, rtol=0)
    assert set(source_state(run)) == set(policy.state_dict())
    torch.testing.assert_close(source_state(run)[moved[0][len("policy."):]], average[moved[0]])


def test_the_average_follows_the_rule_and_resumes(tmp_path):
    """Hand-computed average over the logged trajectory: steps 0..n with d = min(decay, (1+s)/(10+s))."""
    class Record(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.policy = torch.nn.Linear(2, 1)

    module, ema = Record(), EMA(0.9)

    class Trainer:
        global_step = 0

    ema.on_fit_start(Trainer, module)
    expected = {k: v.clone() for k, v in ema.weights.items()}
    for step in range(5):
        with torch.no_grad():
            for p in module.policy.parameters():
                p.add_(1.0)
        Trainer.global_step = step + 1       # Lightning has counted the step when the batch ends
        ema.on_train_batch_end(Trainer, module, None, None, step)
        d = min(0.9, (2 + step) / (11 + step))
        for name, p in module.named_parameters():
            expected[name] = d * expected[name] + (1 - d) * p.detach()
    for name in expected:
        torch.testing.assert_close(ema.weights[name], expected[name])
    checkpoint = {}
    ema.on_save_checkpoint(Trainer, module, checkpoint)
    again = EMA(0.9)
    again.on_load_checkpoint(Trainer, module, checkpoint)
    again.on_fit_start(Trainer, module)             # restored, not re-initialised from the live weights
    for name in expected:
        torch.testing.assert_close(again.weights[name], expected[name])
    with pytest.raises(ValueError, match="within \\(0, 1\\)"):
        EMA(1.5)
