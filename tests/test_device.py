"""Device-marked tests: a policy placed on ``$WAMZOO_TEST_DEVICE`` (default ``cpu``; the GPU check runs them on
``cuda``) predicts in bfloat16 near its float32 actions, and trains there in bfloat16."""

import os

import pytest
import torch

from wamzoo.testing import tiny_policy

pytestmark = pytest.mark.device
DEVICE = os.environ.get("WAMZOO_TEST_DEVICE", "cpu")


@pytest.mark.parametrize("recipe", ["tiny-mot", "fast-wam-tiny", "aha-wam-tiny", "x-wam-tiny"])
def test_bfloat16_on_the_device_acts_like_float32_on_the_cpu(recipe):
    policy, batch = tiny_policy(recipe)
    obs = batch.observation()
    want = policy.eval().predict_action(obs)
    policy.reset()
    policy.place(DEVICE, "bfloat16")
    got = policy.predict_action(obs)
    assert policy.device.type == torch.device(DEVICE).type and got.device == policy.device
    assert float((got.cpu() - want).abs().max()) <= 0.02 * max(1.0, float(want.abs().max()))


def test_a_bfloat16_training_on_the_device(tmp_path):
    from wamzoo.recipes import compose
    from wamzoo.training import load_checkpoint, train

    accelerator = "gpu" if DEVICE.startswith("cuda") else DEVICE
    run = train(compose("tiny-mot", ["trainer.max_steps=3", f"trainer.accelerator={accelerator}",
                                     "trainer.precision=bf16-true"]), out_dir=tmp_path)
    policy = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(p).all() for p in policy.parameters())
