"""``--policy.type=wamzoo`` in LeRobot 0.6.1: registration, lerobot-train on a dataset written by ``wamzoo data
--lerobot-env``, lerobot-eval on LeRobot's Meta-World env, checkpoints both ways with identical actions, errors.

Runs in LeRobot's own Python 3.12 environment (``bash scripts/test_lerobot.sh``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
BIN = Path(sys.executable).parent


def run(*argv: str, cwd: Path) -> str:
    """A LeRobot or wamzoo command; its output, or a failure showing it."""
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Two scripted reach-v3 episodes with LeRobot's Meta-World camera and state, 32 px."""
    out = tmp_path_factory.mktemp("data") / "mw-lerobot"
    run("wamzoo", "data", "metaworld", "--lerobot-env", "--tasks", "reach-v3", "--episodes", "2", "--size", "32",
        "--workers", "1", "--out", str(out), cwd=out.parent)
    return out


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory) -> Path:
    """``lerobot-train --policy.type=wamzoo --policy.recipe=tiny-mot`` for a few steps: its saved folder."""
    out = tmp_path_factory.mktemp("train") / "run"
    log = run("lerobot-train", f"--dataset.repo_id=local/{dataset.name}", f"--dataset.root={dataset}",
              "--policy.type=wamzoo", "--policy.recipe=tiny-mot", "--policy.device=cpu", "--policy.push_to_hub=false",
              "--steps=4", "--batch_size=2", "--save_freq=4", "--num_workers=0", "--log_freq=1",
              "--wandb.enable=false", f"--output_dir={out}", cwd=out.parent)
    assert "step:4" in log and "loss/action" in log
    return out / "checkpoints" / "last" / "pretrained_model"


def test_registered_as_a_policy_type():
    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class
    from lerobot.utils.import_utils import register_third_party_plugins

    register_third_party_plugins()  # what lerobot-train and lerobot-eval do at start-up
    assert "wamzoo" in PreTrainedConfig.get_known_choices()
    assert get_policy_class("wamzoo").__name__ == "WamzooPolicy"


def test_config_names_exactly_one_model():
    from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig, WamzooConfigError

    with pytest.raises(WamzooConfigError, match="--policy.recipe=NAME"):
        WamzooConfig(device="cpu")
    cfg = WamzooConfig(recipe="tiny-mot", device="cpu")
    assert (cfg.horizon, cfg.n_obs, cfg.n_future) == (8, 1, 1)
    assert cfg.observation_delta_indices == [0, 1] and cfg.action_delta_indices == list(range(8))


@pytest.mark.slow
def test_train_saves_a_lerobot_folder_naming_the_recipe(trained):
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["type"] == "wamzoo" and cfg["recipe"] == "tiny-mot" and cfg["wamzoo_version"]
    assert json.loads(cfg["wamzoo"])["data"]["cameras"] == ["corner2"]
    for name in ("model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json",
                 "wamzoo/config.json", "wamzoo/model.safetensors"):
        assert (trained / name).is_file(), name


def _observation(size: int = 480):
    g = torch.Generator().manual_seed(0)
    return {"observation.image": torch.rand(2, 3, size, size, generator=g),
            "observation.state": torch.tensor([[0.0, 0.6, 0.2, 1.0], [0.01, 0.61, 0.19, 1.0]]),
            "task": ["Reach to goal_position", "Reach to goal_position"]}


@pytest.mark.slow
def test_checkpoints_both_ways_same_actions(trained, tmp_path):
    import wamzoo
    from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig
    from lerobot_policy_wamzoo.modeling_wamzoo import WamzooPolicy
    from wamzoo.batch import Batch

    lr = WamzooPolicy.from_pretrained(trained)
    obs = _observation()
    chunk = lr.predict_action_chunk(obs)                      # LeRobot's side: 480 px env frames resized
    native = wamzoo.load(str(trained / "wamzoo"))             # LeRobot -> wamzoo
    batch = lr.to_wamzoo(obs, train=False)
    assert torch.equal(native.predict_action(Batch(rgb=batch.rgb, state=batch.state, task_id=batch.task_id)), chunk)
    native.save_pretrained(tmp_path / "native")               # wamzoo -> LeRobot
    back = WamzooPolicy(WamzooConfig(pretrained=str(tmp_path / "native"), device="cpu",
                                     input_features=lr.config.input_features,
                                     output_features=lr.config.output_features))
    assert torch.equal(back.predict_action_chunk(obs), chunk)
    back.save_pretrained(tmp_path / "lerobot")
    again = WamzooPolicy.from_pretrained(tmp_path / "lerobot")
    assert torch.equal(again.predict_action_chunk(obs), chunk)
    # select_action: the queue hands out the chunk's actions one by one
    again.reset()
    firsts = [again.select_action(obs) for _ in range(3)]
    assert torch.equal(torch.stack(firsts, 1), chunk[:, :3])


@pytest.mark.slow
def test_unfit_observations_are_refused_naming_the_fix(trained):
    from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfigError
    from lerobot_policy_wamzoo.modeling_wamzoo import WamzooPolicy

    policy = WamzooPolicy.from_pretrained(trained)
    two = dict(_observation(), **{"observation.images.wrist": torch.rand(2, 3, 32, 32)})
    with pytest.raises(WamzooConfigError, match="--policy.image_keys"):
        policy.predict_action_chunk(two)
    wide = dict(_observation(), **{"observation.state": torch.zeros(2, 7)})
    with pytest.raises(WamzooConfigError, match="7 values, the policy reads 4"):
        policy.predict_action_chunk(wide)
    policy.config.resize_images = False
    with pytest.raises(WamzooConfigError, match="resize_images=true"):
        policy.predict_action_chunk(_observation())


@pytest.mark.slow
def test_lerobot_eval_on_metaworld(trained, tmp_path):
    out = tmp_path / "eval"
    log = run("lerobot-eval", f"--policy.path={trained}", "--policy.device=cpu", "--env.type=metaworld",
              "--env.task=reach-v3", "--eval.n_episodes=2", "--eval.batch_size=2",
              "--rename_map={\"observation.image\": \"observation.images.corner2\"}", "--seed=1000000",
              f"--output_dir={out}", cwd=tmp_path)
    info = json.loads((out / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 2, log[-2000:]
