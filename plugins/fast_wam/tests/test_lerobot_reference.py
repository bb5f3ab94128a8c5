"""Faithfulness guard rail: a FastWAM saved and run by LeRobot itself, reproduced by wamzoo.

``fixtures/lerobot_fastwam_tiny/`` was written by LeRobot 0.6.1's own code (``FastWAMPolicy.save_pretrained``
and its processors; the tiny Wan VAE by diffusers' ``save_pretrained`` into ``vae/``), and
``reference.safetensors`` holds the inputs, the initial noise and the action chunk that LeRobot's
``preprocessor -> predict_action_chunk -> postprocessor`` returned for them. It is regenerated, in a
Python 3.12 environment with LeRobot (not wamzoo's), by ``fixtures/make_lerobot_fastwam.py`` (its docstring
has the command). This test needs no LeRobot: it converts the folder with the ``fast-wam.lerobot``
converter and must give the same chunk to 1e-5.

Noise: LeRobot infers each sample alone from ``torch.randn((1, K, A), generator=Generator("cpu").manual_seed(
inference_seed))``; wamzoo's first draw from the generator given to ``predict_action`` is its action noise, so a
generator seeded with ``inference_seed`` per sample gives the very same tensor (checked below).
"""

import json
from pathlib import Path

import pytest
import torch

from wamzoo.batch import Batch

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_fastwam_tiny"
CAMERAS = ["front", "wrist"]


@pytest.fixture(scope="module")
def reference():
    from safetensors.torch import load_file

    return load_file(str(FIXTURE / "reference.safetensors"))


@pytest.fixture(scope="module")
def policy():
    from huggingface_hub import constants

    from wamzoo.hub import convert
    from wamzoo_fast_wam.pretrained import LEROBOT_FILES

    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True  # nothing may be fetched
    try:
        return convert("fast-wam.lerobot", {f: FIXTURE / f for f in LEROBOT_FILES},
                       codec={"name": "wan-vae", "pretrained": str(FIXTURE / "vae"), "subfolder": None}).eval()
    finally:
        constants.HF_HUB_OFFLINE = offline


def _obs(ref, i):
    rgb = torch.stack([ref[f"rgb_{c}"][i] for c in CAMERAS])[None, None]  # [1, T=1, V, 3, H, W], raw size
    return Batch(rgb=rgb, state=ref["state"][i:i + 1], instruction=ref["context"][i:i + 1],
                 instruction_mask=ref["context_mask"][i:i + 1])


def _generator(seed):
    return torch.Generator().manual_seed(int(seed))


def test_fixture_was_made_by_lerobot_0_6():
    versions = json.loads((FIXTURE / "versions.json").read_text())
    assert versions["lerobot"].startswith("0.6.")
    cfg = json.loads((FIXTURE / "config.json").read_text())
    assert cfg["type"] == "fastwam" and cfg["toggle_action_dimensions"] == []


def test_converter_reads_the_lerobot_folder(policy):
    info = policy.info
    assert (info.cameras, info.num_views, info.height, info.width) == (CAMERAS, 2, 32, 32)
    assert (info.action_dim, info.state_dim, info.horizon) == (3, 4, 8)
    assert policy.scheduler.phases[0].steps == {"action": 6} and policy.scheduler.infer_shift == 3.0
    assert policy.normalizer.modes == {"action": "mean_std", "state": "mean_std"}
    assert policy.codec.layout == "horizontal" and policy.codec.canvas == (32, 64)


def test_seeded_generator_draws_lerobots_noise(reference):
    seed, noise = reference["seed"], reference["noise"]
    for i in range(noise.shape[0]):
        assert torch.equal(torch.randn(noise[i:i + 1].shape, generator=_generator(seed)), noise[i:i + 1])


def test_action_chunk_matches_lerobot(policy, reference):
    got = torch.cat([policy.predict_action(_obs(reference, i), generator=_generator(reference["seed"]))
                     for i in range(reference["action"].shape[0])])
    want = reference["action"]
    diff = (got - want).abs().max().item()
    assert got.shape == want.shape and diff <= 1e-5, f"max |wamzoo - LeRobot| = {diff:.3g}"
    # the noise matters: another seed moves the chunk far beyond the tolerance
    other = policy.predict_action(_obs(reference, 0), generator=_generator(reference["seed"] + 1))
    assert (other - want[:1]).abs().max() > 1e-2


def test_the_folder_loads_by_path_alone_and_matches_lerobot_batched(reference):
    """``wamzoo.load(folder)`` recognises LeRobot's layout and converts it (its VAE beside it); the samples in one
    batch, each with its own generator at LeRobot's seed, give LeRobot's per-sample chunks."""
    from huggingface_hub import constants

    import wamzoo
    from wamzoo.batch import Batch

    offline, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        policy = wamzoo.load(str(FIXTURE)).eval()
    finally:
        constants.HF_HUB_OFFLINE = offline
    assert policy.config["upstream"]["format"] == "fast-wam.lerobot"
    n = reference["action"].shape[0]
    obs = [_obs(reference, i) for i in range(n)]
    batch = Batch(rgb=torch.cat([o.rgb for o in obs]), state=torch.cat([o.state for o in obs]),
                  instruction=torch.cat([o.instruction for o in obs]),
                  instruction_mask=torch.cat([o.instruction_mask for o in obs]))
    got = policy.predict_action(batch, generator=[_generator(reference["seed"]) for _ in range(n)])
    diff = (got - reference["action"]).abs().max().item()
    assert diff <= 1e-5, f"max |wamzoo - LeRobot| = {diff:.3g}"
