"""Pretrained HarmoWAM names. HarmoWAM has no released checkpoint; ``harmo-wam.mw-easy-small`` ships
with the plugin (``weights/``): the ``harmo-wam-front-hour`` recipe (HarmoWAM with the shared training recipe:
chunks trained to their end, the rate decayed over the time budget, cameras front + top; stage 2 for 40 minutes on
the ``harmo-wam-front-stage1`` world model of 20) trained on Meta-World mw-easy's executed actions
(``wamzoo export runs/harmo-wam-front-hour ... --results`` of its evaluation on seeds 2000000..).

Torch-free, so registering the names at plugin load costs nothing.

>>> import wamzoo
>>> policy = wamzoo.load("harmo-wam.mw-easy-small")       # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from wamzoo.registry import Pretrained

PRETRAINED = [
    Pretrained(
        name="harmo-wam.mw-easy-small", repo_id=f"local:{Path(__file__).parent / 'weights' / 'mw-easy-small'}",
        description="HarmoWAM (hard gate; small: 3.4M parameters, stored as float16; recipe harmo-wam-front-hour, cameras"
                    " front + top) trained 20 + 40 minutes on one CPU core on Meta-World mw-easy (50 scripted"
                    " demonstrations per task); runs offline, no download"),
]
