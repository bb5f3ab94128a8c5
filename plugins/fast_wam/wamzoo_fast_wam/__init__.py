"""Fast-WAM for wamzoo: a world action model that is trained with video co-training but skips
imagination at test time (the Fast-WAM paper; public code: github.com/yuantianyuan01/FastWAM).

Components (registered lazily):

- ``world_model`` ``fast-wam.video``: Wan2.2-style video expert (:mod:`wamzoo_fast_wam.video`);
- ``action_expert`` ``fast-wam.action``: the narrow ActionDiT (:mod:`wamzoo_fast_wam.action`),
  initialisable from video weights (:mod:`wamzoo_fast_wam.action_init`);
- ``coupling`` ``fast-wam.mot``: one masked attention over both experts, ``variant`` =
  ``default`` | ``joint`` | ``idm`` (:mod:`wamzoo_fast_wam.coupling`, :mod:`wamzoo_fast_wam.masks`,
  :mod:`wamzoo_fast_wam.idm`).

Training and sampling use the core's ``flow-matching`` scheduler (shifted-uniform times with the
code's Gaussian-bump weight, logit-normal as the paper's option; Euler on
``phi(linspace(1, 0, 11))``). Recipes: ``fast-wam``, ``fast-wam-joint``, ``fast-wam-idm``,
``fast-wam-novideo`` (Meta-World, small), their ``-tiny`` versions (synthetic data, tests) and
``fast-wam-paper`` (the released model's size).

Pretrained names (:mod:`wamzoo_fast_wam.pretrained`) load the released checkpoints through the
converters ``fast-wam.release`` and ``fast-wam.lerobot`` (:mod:`wamzoo_fast_wam.convert`).
"""

from pathlib import Path

from wamzoo.hookspecs import hookimpl

_TINY_VIDEO = {"latent_channels": 48, "dim": 32, "num_layers": 2, "num_heads": 2, "head_dim": 16, "context_dim": 16}
_TINY_ACTION = {"action_dim": 4, "horizon": 8, "dim": 16, "num_layers": 2, "num_heads": 2, "head_dim": 16,
                "context_dim": 16}


@hookimpl
def register_components(register):
    register("world_model", "fast-wam.video", "wamzoo_fast_wam.video:FastWAMVideo", tiny=_TINY_VIDEO)
    register("action_expert", "fast-wam.action", "wamzoo_fast_wam.action:FastWAMAction", tiny=_TINY_ACTION)
    register("coupling", "fast-wam.mot", "wamzoo_fast_wam.coupling:FastWAMCoupling", tiny={"variant": "default"})


@hookimpl
def register_recipes(register):
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_pretrained(register):
    from wamzoo_fast_wam.pretrained import PRETRAINED

    register(*PRETRAINED)


@hookimpl
def register_converters(register):
    from wamzoo_fast_wam.pretrained import RELEASE, LEROBOT

    register(RELEASE, "wamzoo_fast_wam.convert:convert_release")
    register(LEROBOT, "wamzoo_fast_wam.convert:convert_lerobot", recognise="wamzoo_fast_wam.convert:recognise_lerobot")
