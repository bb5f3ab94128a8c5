"""Pretrained Fast-WAM names (released checkpoints, converted on load by :mod:`wamzoo_fast_wam.convert`).

Torch-free, so registering the names at plugin load costs nothing; the converters import on use.

``fast-wam.mw-easy-small`` ships with the plugin (``weights/``): the ``fast-wam-front-hour`` recipe (Fast-WAM with
chunks trained to their end, the rate decayed over the time budget, cameras front + top, 60 minutes) trained on
Meta-World mw-easy's executed actions (``wamzoo export runs/fast-wam-front-hour ... --results`` of its evaluation on seeds
2000000.., made after it was chosen on the leaderboard's seeds 1000000..), executed with temporal ensembling
(``--ensemble 0.01``, the evaluation default that export recorded from those results).

>>> import wamzoo
>>> policy = wamzoo.load("fast-wam.libero-2cam224")        # doctest: +SKIP
>>> chunk = policy.predict_action(observation)              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from wamzoo.registry import Pretrained

RELEASE, LEROBOT = "fast-wam.release", "fast-wam.lerobot"

#: The files of a LeRobot FastWAM checkpoint (``FastWAMPolicy.save_pretrained`` + its processors:
#: the normaliser is step 3 of the preprocessor, the unnormaliser step 0 of the postprocessor).
LEROBOT_FILES = ["config.json", "model.safetensors", "policy_preprocessor.json",
                 "policy_preprocessor_step_3_normalizer_processor.safetensors", "policy_postprocessor.json",
                 "policy_postprocessor_step_0_unnormalizer_processor.safetensors"]

_RELEASE_COMMON = {"num_heads": 24, "horizon": 32, "frames": 9, "frame_stride": 4, "steps": 10}

PRETRAINED = [
    Pretrained(
        name="fast-wam.mw-easy-small", repo_id=f"local:{Path(__file__).parent / 'weights' / 'mw-easy-small'}",
        description="Fast-WAM (default variant, small: 1.9M parameters; recipe fast-wam-front-hour, cameras front +"
                    " top) trained 60 minutes on one CPU core on Meta-World mw-easy (50 scripted demonstrations per"
                    " task); evaluated with temporal ensembling by default; runs offline"),
    Pretrained(
        name="fast-wam.libero-2cam224", repo_id="yuanty/fastwam", converter=RELEASE,
        files=["libero_uncond_2cam224.pt", "libero_uncond_2cam224_dataset_stats.json"],
        description="Fast-WAM release on LIBERO: two 224x224 cameras side by side, T5 instructions, delta"
                    " end-effector actions (min/max); the authors execute 10 of the 32 actions per chunk",
        options={**_RELEASE_COMMON, "checkpoint": "libero_uncond_2cam224.pt",
                 "stats_file": "libero_uncond_2cam224_dataset_stats.json", "norm_mode": "min/max",
                 "cameras": ["image", "wrist_image"], "camera_size": [224, 224], "layout": "horizontal",
                 "canvas": [224, 448]}),
    Pretrained(
        name="fast-wam.robotwin-3cam384", repo_id="yuanty/fastwam", converter=RELEASE,
        files=["robotwin_uncond_3cam_384.pt", "robotwin_uncond_3cam_384_dataset_stats.json"],
        description="Fast-WAM release on RoboTwin 2.0: head camera above the two wrist cameras (384x320), T5"
                    " instructions, 14-d joint actions (z-score); the authors execute 24 of the 32 actions",
        options={**_RELEASE_COMMON, "checkpoint": "robotwin_uncond_3cam_384.pt",
                 "stats_file": "robotwin_uncond_3cam_384_dataset_stats.json", "norm_mode": "z-score",
                 "cameras": ["cam_high", "cam_left_wrist", "cam_right_wrist"], "camera_size": [240, 320],
                 "layout": "robotwin", "canvas": [384, 320]}),
    Pretrained(
        name="lerobot.fastwam_base", repo_id="lerobot/fastwam_base", converter=LEROBOT, files=list(LEROBOT_FILES),
        description="LeRobot's FastWAM base checkpoint (Wan2.2-TI2V-5B video expert + ActionDiT)"),
    Pretrained(
        name="lerobot.fastwam-libero-2cam224", repo_id="ZibinDong/fastwam_libero_uncond_2cam224",
        converter=LEROBOT, files=list(LEROBOT_FILES),
        description="The LIBERO Fast-WAM release in LeRobot format (the checkpoint LeRobot's docs evaluate)"),
]


def lerobot_pretrained(repo_id: str, name: str | None = None, revision: str | None = None) -> Pretrained:
    """A :class:`~wamzoo.registry.Pretrained` for any LeRobot FastWAM repo; register it from a plugin's
    ``register_pretrained`` hook, or convert a downloaded folder directly::

        from wamzoo.hub import convert
        policy = convert("fast-wam.lerobot", {f: folder / f for f in LEROBOT_FILES})
    """
    return Pretrained(name=name or repo_id, repo_id=repo_id, revision=revision, converter=LEROBOT,
                      files=list(LEROBOT_FILES), description=f"LeRobot FastWAM checkpoint {repo_id}")
