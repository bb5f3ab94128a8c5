"""HarmoWAM for wamzoo: a world model imagines the future; a predictive and a reactive action
expert read its latent; a process-adaptive gate picks one of them per step (HarmoWAM paper; no
public code: every choice the paper leaves open is listed in the plugin's README).

Components (registered lazily):

- ``action_expert`` ``harmo-wam.gated``: predictive expert (flow-matching action DiT
  cross-attending to the latent, :mod:`~wamzoo_harmo_wam.predictive`), reactive expert (inverse
  dynamics from a timm backbone's features of the predicted frames and the pooled latent,
  :mod:`~wamzoo_harmo_wam.reactive`) and the gate (:mod:`~wamzoo_harmo_wam.gate`), combined by
  :mod:`~wamzoo_harmo_wam.gated`;
- ``coupling`` ``harmo-wam.latent``: video first, then the experts on the world model's latent
  (:mod:`~wamzoo_harmo_wam.coupling`, :mod:`~wamzoo_harmo_wam.world_model`);
- ``data`` ``harmo-wam.synthetic-grasp``: synthetic grasping episodes with gate labels (tests).

The world model is any registered MoT world model (recipes use the core's ``dit.video``); the
scheduler is the core's ``flow-matching`` with phases ``[{video: 5}, {action: 10}]``. Recipes:
``harmo-wam-stage1`` (world model), ``harmo-wam`` (gate), ``harmo-wam-average``,
``harmo-wam-predictive``, ``harmo-wam-reactive`` (stage 2), their ``-tiny`` versions, and the
``pick-place`` ones (``harmo-wam-pp-*``). Pretrained: ``harmo-wam.mw-easy-small``
(:mod:`~wamzoo_harmo_wam.pretrained`, shipped in ``weights/``).
"""

from pathlib import Path

from wamzoo.hookspecs import hookimpl

_TINY_EXPERT = {"action_dim": 4, "horizon": 8, "latent_dim": 32, "context_dim": 16, "state_dim": 4,
                "predictive": {"dim": 16, "num_layers": 1, "num_heads": 2},
                "reactive": {"backbone": "test_convnext", "hidden": 32}, "gate": {"hidden": 16}}


@hookimpl
def register_components(register):
    register("action_expert", "harmo-wam.gated", "wamzoo_harmo_wam.gated:HarmoActionExpert", tiny=_TINY_EXPERT)
    register("coupling", "harmo-wam.latent", "wamzoo_harmo_wam.coupling:HarmoCoupling", tiny={})
    register("data", "harmo-wam.synthetic-grasp", "wamzoo_harmo_wam.synthetic:GraspDataModule",
             tiny={"episodes": 2, "length": 12})


@hookimpl
def register_recipes(register):
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_pretrained(register):
    from wamzoo_harmo_wam.pretrained import PRETRAINED

    register(*PRETRAINED)
