"""Pretrained AHA-WAM names (the released checkpoint, converted on load by :mod:`wamzoo_aha_wam.convert`).

Torch-free, so registering the names at plugin load costs nothing; the converter is registered as a
lazy reference and imported on use.

The release (HF ``SereneC/AHA-WAM-RoboTwin2.0``) is the offset model of the code's
``configs/task/robotwin_ahawam_offset.yaml``: ``robotwin_ahawam.pt`` (written by
``AHAWAMChunkBase.save_checkpoint``) and ``dataset_stats.json`` (the ``LinearNormalizer``
statistics of its RoboTwin 2.0 data). The options below are that config's facts, which the files
do not contain (``configs/model/ahawam.yaml``, ``configs/data/robotwin.yaml``, the RoboTwin
deploy policy).

``aha-wam.mw-easy-small`` ships with the plugin (``weights/``): the ``aha-wam-front-hour`` recipe (AHA-WAM with the
shared training recipe: chunks trained to their end, the rate decayed over the time budget, cameras front + top;
60 minutes) trained on Meta-World mw-easy's executed actions (``wamzoo export runs/aha-wam-front-hour ... --results``
of its evaluation on seeds 2000000.., made after it was chosen on the leaderboard's seeds 1000000..).

>>> import wamzoo
>>> policy = wamzoo.load("aha-wam.robotwin")                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from wamzoo.registry import Pretrained

RELEASE = "aha-wam.release"
REPO = "SereneC/AHA-WAM-RoboTwin2.0"

PRETRAINED = [
    Pretrained(
        name="aha-wam.mw-easy-small", repo_id=f"local:{Path(__file__).parent / 'weights' / 'mw-easy-small'}",
        description="AHA-WAM (small: 2.2M parameters, stored as float16; recipe aha-wam-front-hour, cameras front +"
                    " top) trained 60 minutes (1626 steps) on one CPU core on Meta-World mw-easy (50 scripted demonstrations"
                    " per task); one 8-action chunk per call"
                    " (evaluate with --replan 8); runs offline, no download"),
    Pretrained(
        name="aha-wam.robotwin", repo_id=REPO, converter=RELEASE, files=["robotwin_ahawam.pt", "dataset_stats.json"],
        description="AHA-WAM on RoboTwin 2.0: Wan2.2-TI2V-5B planner with 6 history frames, 1024-wide ActionDiT"
                    " executor with OVCR (32 queries), chunks of 16 joint actions (z-score), planner refreshed"
                    " every 2 chunks; head camera above the two wrist cameras (384x320), T5 instructions",
        options={"checkpoint": "robotwin_ahawam.pt", "stats_file": "dataset_stats.json", "norm_mode": "z-score",
                 "cameras": ["cam_high", "cam_left_wrist", "cam_right_wrist"], "camera_size": [240, 320],
                 "layout": "robotwin", "canvas": [384, 320], "num_heads": 24, "chunk_size": 16, "num_chunks": 5,
                 "max_offset": 15, "history": 6, "refresh_every": 2, "video_rope_frame_stride": 8, "obs_pool": 1,
                 "steps": 10}),
]

