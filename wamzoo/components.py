"""The core's own plugin: paper-neutral components registered like any other plugin's."""

from __future__ import annotations

import os
from pathlib import Path

from wamzoo.hookspecs import hookimpl

TINY_MASK = {"video.cond -> video.cond": "all", "video.future -> video.*": "all",
             "action -> action": "all", "action -> video.cond": "all"}


@hookimpl
def register_components(register):
    """Core components, registered lazily ("module:Class") so listing stays fast."""
    register("codec", "patch", "wamzoo.codecs:PatchCodec", tiny={"patch": 4})
    register("codec", "wan-vae", "wamzoo.codecs:WanVAECodec", tiny={"config": {
        "base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [True],
        "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4}})
    register("world_model", "dit.video", "wamzoo.experts:VideoWorldModel",
             tiny={"latent_channels": 48, "dim": 32, "num_layers": 2, "num_heads": 2, "context_dim": 16})
    register("action_expert", "dit.action", "wamzoo.experts:ActionDiTExpert",
             tiny={"action_dim": 4, "horizon": 8, "dim": 16, "num_layers": 2, "num_heads": 2, "head_dim": 16,
                   "context_dim": 16})
    register("coupling", "mot", "wamzoo.couplings:MoTCoupling", tiny={"mask": TINY_MASK})
    register("scheduler", "flow-matching", "wamzoo.schedulers:FlowMatchingScheduler", tiny={})
    register("data", "synthetic", "wamzoo.data.synthetic:SyntheticDataModule", tiny={"size": 16})
    register("data", "metaworld", "wamzoo.data.dataset:MetaWorldDataModule",
             tiny={"root": "data/metaworld-tiny", "suite": "mw-easy", "size": 32, "horizon": 8})


@hookimpl
def register_recipes(register):
    register(Path(__file__).parent / "configs")
    for folder in _extra_recipe_dirs():
        register(folder)


def _extra_recipe_dirs() -> list[Path]:
    """The checkout's top-level ``recipes/`` (cross-paper mixes; present in an editable install) and the
    folders of ``WAMZOO_RECIPE_PATH`` (``os.pathsep``-separated), if they exist."""
    folders = [Path(__file__).resolve().parent.parent / "recipes"]
    folders += [Path(p) for p in os.environ.get("WAMZOO_RECIPE_PATH", "").split(os.pathsep) if p]
    return [f for f in folders if f.is_dir()]
