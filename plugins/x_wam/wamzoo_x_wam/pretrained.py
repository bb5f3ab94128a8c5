"""Pretrained X-WAM names (the released checkpoints, converted on load by :mod:`wamzoo_x_wam.convert`).

Torch-free, so registering the names at plugin load costs nothing; the converter imports on use.

The release (HF ``sharinka0715/X-WAM-checkpoints``) holds one folder per training run, laid out as
the code's ``train_sft.py`` writes it and its ``evaluation/policy_server.py --exp_path`` reads it:
``<run>/config.yaml`` (the composed run config, with the data config and its q01/q99 statistics
under ``dataset``) and the Lightning/DeepSpeed checkpoint folder
``<run>/checkpoints/last.ckpt/checkpoint/mp_rank_00_model_states.pt``.

``x-wam.mw-easy-small`` ships with the plugin (``weights/``): the ``x-wam-front`` recipe (X-WAM with the shared
training recipe: chunks trained to their end, the rate decayed over the time budget, cameras front + top) trained
on Meta-World mw-easy's executed actions (``wamzoo export runs/x-wam-front ... --results`` of its leaderboard
evaluation).

>>> import wamzoo
>>> policy = wamzoo.load("x-wam.robotwin")                  # doctest: +SKIP
>>> chunk = policy.predict_action(observation)              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wamzoo.registry import Pretrained

RELEASE = "x-wam.release"
REPO = "sharinka0715/X-WAM-checkpoints"
MODEL_STATES = "checkpoints/last.ckpt/checkpoint/mp_rank_00_model_states.pt"

#: Camera order of each run = the order of the view embeddings (the deploy code's order, which is the
#: sorted order of the dataset's observation keys the model was trained with).
ROBOTWIN_CAMERAS = ["head_camera", "left_camera", "right_camera"]
ROBOCASA_CAMERAS = ["robot0_agentview_left", "robot0_agentview_right", "robot0_eye_in_hand"]


def release(name: str, run: str, cameras: list[str], description: str, **options: Any) -> Pretrained:
    """A :class:`~wamzoo.registry.Pretrained` for the run folder ``run`` of the X-WAM release."""
    checkpoint, config = f"{run}/{MODEL_STATES}", f"{run}/config.yaml"
    return Pretrained(name=name, repo_id=REPO, converter=RELEASE, files=[config, checkpoint], description=description,
                      options={"checkpoint": checkpoint, "config": config, "cameras": list(cameras), "num_heads": 24,
                               **options})


PRETRAINED = [
    Pretrained(
        name="x-wam.mw-easy-small", repo_id=f"local:{Path(__file__).parent / 'weights' / 'mw-easy-small'}",
        description="X-WAM (ANS, asynchronous inference; small: 2.7M parameters, stored as float16; recipe"
                    " x-wam-front, cameras front + top) trained 34 minutes (700 steps) on one CPU core on Meta-World"
                    " mw-easy (50 scripted demonstrations per task, RGB + depth); runs offline, no download"),
    release("x-wam.robotwin", "robotwin_sft", ROBOTWIN_CAMERAS,
            "X-WAM fine-tuned on RoboTwin 2.0: three 256x320 cameras as separate tokens with view embeddings,"
            " 16-d bimanual end-effector state, 14-d delta end-effector actions (q01/q99), 32 actions per chunk"
            " after 10 of 50 UniPC steps; depth branch included"),
    release("x-wam.robocasa", "robocasa_sft", ROBOCASA_CAMERAS,
            "X-WAM fine-tuned on RoboCasa (24 kitchen tasks): three 256x320 cameras, single-arm state padded to"
            " 16-d; the release returns the first 7 of the 14 action dimensions (xyz, axis-angle, gripper)"),
    release("x-wam.pretrained", "pretrained", ["view0", "view1", "view2"],
            "X-WAM pretrained on 5,800 hours of robot data (the starting point of the fine-tuned runs), with the"
            " statistics of its run config"),
]
