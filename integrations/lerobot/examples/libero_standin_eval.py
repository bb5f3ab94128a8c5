"""``lerobot-eval --env.type=libero`` where LIBERO's scene assets are missing: robosuite's Lift scene stands in.

LeRobot's LIBERO env (``lerobot[libero]``: hf-libero, robosuite 1.4.0) builds LIBERO's scenes from
``lerobot/libero-assets``, downloaded from the Hugging Face Hub on first use (the wheel ships none). Without
the Hub, ``lerobot-eval --env.type=libero`` stops at its first reset (FileNotFoundError: .../libero/libero/
assets/scenes/...xml). This script runs the same ``lerobot-eval`` with LIBERO's ``OffScreenRenderEnv``
replaced by robosuite's Lift scene (Panda, OSC_POSE, cameras ``agentview`` and ``robot0_eye_in_hand`` rendered
offscreen): everything else is LeRobot's and LIBERO's code (``LiberoEnv``: observation format, 10 settle steps,
relative control; ``LiberoProcessorStep``; ``lerobot-eval``'s rollout, videos and metrics) and the wamzoo
policy. It proves the plumbing, not LIBERO success (Lift's task is not the suite's).

    python libero_standin_eval.py make-tiny FOLDER        # an untrained fast-wam-tiny for LIBERO's features
    python libero_standin_eval.py --policy.type=wamzoo --policy.pretrained=FOLDER --env.type=libero ... \\
        --eval.batch_size=1                               # (the stand-in is patched in this process only)
"""

from __future__ import annotations

import sys

import numpy as np


def make_tiny(folder: str) -> None:
    """An untrained ``fast-wam-tiny`` for LeRobot's LIBERO env: the release's cameras (``image``,
    ``wrist_image``) read at 32x32, 8 state values, 7-d actions, placeholder statistics (-1..1)."""
    import torch
    from wamzoo.data.info import DataInfo
    from wamzoo.policy import WAMPolicy
    from wamzoo.recipes import compose

    def stats(n):
        return {"min": [-1.0] * n, "max": [1.0] * n, "mean": [0.0] * n, "std": [1.0] * n, "q01": [-1.0] * n,
                "q99": [1.0] * n}

    torch.manual_seed(0)
    recipe = compose("fast-wam-tiny", [])
    d = recipe.data
    info = DataInfo(action_dim=7, state_dim=8, num_views=2, height=32, width=32, horizon=d["horizon"],
                    n_obs=d["n_obs"], n_future=d["n_future"], fps=20.0, cameras=["image", "wrist_image"],
                    stats={"action": stats(7), "state": stats(8)})
    policy = WAMPolicy.from_config(recipe.policy, info)
    policy.save_pretrained(folder, force=True)
    print(f"saved {folder}: fast-wam-tiny, {sum(p.numel() for p in policy.parameters())} parameters, untrained")


class LiftStandIn:
    """The part of LIBERO's ``OffScreenRenderEnv`` that LeRobot's ``LiberoEnv`` calls, on robosuite's Lift."""

    def __init__(self, bddl_file_name, camera_heights, camera_widths, control_freq, hard_reset=True, **_):
        import robosuite as suite
        from robosuite.controllers import load_controller_config

        print(f"[stand-in] robosuite Lift instead of {bddl_file_name.rsplit('/', 1)[-1]}", flush=True)
        self.env = suite.make("Lift", robots="Panda", controller_configs=load_controller_config(default_controller="OSC_POSE"),
                              has_renderer=False, has_offscreen_renderer=True, use_camera_obs=True,
                              camera_names=["agentview", "robot0_eye_in_hand"], camera_heights=camera_heights,
                              camera_widths=camera_widths, control_freq=control_freq, ignore_done=True)
        self.robots = self.env.robots

    def _obs(self, obs):  # LIBERO's env adds the joint positions and velocities
        robot, data = self.robots[0], self.env.sim.data
        obs["robot0_joint_pos"] = np.array(data.qpos[robot._ref_joint_pos_indexes])
        obs["robot0_joint_vel"] = np.array(data.qvel[robot._ref_joint_vel_indexes])
        return obs

    def seed(self, seed):
        np.random.seed(seed)

    def reset(self):
        return self._obs(self.env.reset())

    def set_init_state(self, state):  # LIBERO's init states are MuJoCo states of LIBERO's scenes
        return self._obs(self.env._get_observations())

    def step(self, action):
        obs, reward, done, info = self.env.step(action)
        return self._obs(obs), reward, done, info

    def check_success(self):
        return bool(self.env._check_success())

    def close(self):
        self.env.close()


def main() -> None:
    if sys.argv[1:2] == ["make-tiny"]:
        make_tiny(sys.argv[2])
        return
    import lerobot.envs.libero as lerobot_libero
    from lerobot.scripts.lerobot_eval import main as lerobot_eval

    lerobot_libero.OffScreenRenderEnv = LiftStandIn
    sys.argv = ["lerobot-eval", *sys.argv[1:]]
    lerobot_eval()


if __name__ == "__main__":
    main()
