"""Pretrained HarmoWAM names. HarmoWAM has no released checkpoint; ``harmo-wam.mw-easy-small`` ships
with the plugin (``weights/``): the ``harmo-wam`` recipe (stage 2 on the ``harmo-wam-stage1`` world
model) trained on Meta-World mw-easy (``wamzoo export runs/harmo-wam ... --results`` of its evaluation).

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
        description="HarmoWAM (hard gate; small: 3.4M parameters, stored as float16) trained 12 + 15 minutes on one"
                    " CPU core on Meta-World mw-easy (50 scripted demonstrations per task); runs offline, no download"),
]
