"""The LIBERO path of ``--policy.type=wamzoo`` without LIBERO's simulator: every step ``lerobot-eval
--env.type=libero`` takes between ``LiberoEnv``'s observation and the action it steps with (the policy built from
the env's features, ``preprocess_observation``, the instruction as ``task``, LeRobot's ``LiberoProcessorStep``:
frames turned 180 degrees, state = eef position + axis-angle + gripper, the policy's pipelines, ``select_action``).

LIBERO's scenes need ``lerobot/libero-assets`` from the Hugging Face Hub, which ``lerobot[libero]`` does not ship;
docs/lerobot.md shows ``lerobot-eval`` failing without them (the exact error) and a whole episode with robosuite's
Lift scene standing in for LIBERO's (``examples/libero_standin_eval.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

LIBERO_10_0 = "put both the alphabet soup and the tomato sauce in the basket"


def tiny_libero_policy(folder):
    """An untrained ``fast-wam-tiny`` for LIBERO's features, as ``examples/libero_standin_eval.py make-tiny``."""
    path = Path(__file__).parents[1] / "examples" / "libero_standin_eval.py"
    spec = importlib.util.spec_from_file_location("libero_standin_eval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_tiny(str(folder))
    return folder


def libero_observation(size: int, batch: int = 1) -> dict:
    """One observation of LeRobot's ``LiberoEnv`` (``obs_type=pixels_agent_pos``) from a vector env of ``batch``."""
    rng = np.random.default_rng(0)
    return {"pixels": {"image": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
                       "image2": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)},
            "robot_state": {"eef": {"pos": rng.normal(size=(batch, 3)), "quat": np.tile([0.0, 1.0, 0.0, 0.0], (batch, 1)),
                                    "mat": np.tile(np.eye(3), (batch, 1, 1))},
                            "gripper": {"qpos": rng.normal(size=(batch, 2)), "qvel": np.zeros((batch, 2))},
                            "joints": {"pos": rng.normal(size=(batch, 7)), "vel": np.zeros((batch, 7))}}}


@pytest.mark.parametrize("image_keys", [["observation.images.image", "observation.images.image2"], []])
def test_libero_observation_to_action_as_lerobot_eval(tmp_path, image_keys):
    from lerobot.envs.configs import LiberoEnv
    from lerobot.envs.factory import make_env_pre_post_processors
    from lerobot.envs.utils import preprocess_observation
    from lerobot.policies.factory import make_policy, make_pre_post_processors
    from lerobot.utils.import_utils import register_third_party_plugins
    from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig

    register_third_party_plugins()
    folder = tiny_libero_policy(tmp_path / "tiny-libero")
    env_cfg = LiberoEnv(task="libero_10", observation_height=48, observation_width=48)
    cfg = WamzooConfig(pretrained=str(folder), device="cpu", image_keys=image_keys)
    policy = make_policy(cfg, env_cfg=env_cfg)                    # as lerobot-eval: features from the env
    pre, post = make_pre_post_processors(policy_cfg=cfg, pretrained_path=None)
    env_pre, env_post = make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=cfg)
    policy.reset()
    actions = []
    for _ in range(3):
        obs = preprocess_observation(libero_observation(48, batch=2))
        obs["task"] = [LIBERO_10_0] * 2
        obs = env_pre(obs)
        assert obs["observation.state"].shape == (2, 8)
        obs = pre(obs)
        with torch.inference_mode():
            action = policy.select_action(obs)
        actions.append(env_post({"action": post(action)})["action"])
    assert all(a.shape == (2, 7) and torch.isfinite(a).all() for a in actions)
    # both cameras reach the policy as its two views, resized to its 32x32, with the 8 state values
    batch = policy.to_wamzoo(obs, train=False)
    assert tuple(batch.rgb.shape) == (2, 1, 2, 3, 32, 32) and tuple(batch.state.shape) == (2, 8)
