"""AHA-WAM for wamzoo: an asynchronous world action model with a low-frequency world planner and a
high-frequency action executor (the AHA-WAM paper; the release is readable in the fork
Silvernoon/AHA-WAM at its first commit). Built on Fast-WAM's Mixture-of-Transformers: the planner
is Fast-WAM's video expert, the executor Fast-WAM's ActionDiT (``wamzoo-fast-wam``).

One file per mechanism:

- :mod:`~wamzoo_aha_wam.planner` (``world_model`` ``aha-wam.planner``): per-frame causal video DiT
  over a window of history frames, exposing its layerwise context;
- :mod:`~wamzoo_aha_wam.memory`: the rolling key/value memory of the last history frames, run a
  frame per refresh at inference (the coupling's; any ``frame-tokens`` world model plans);
- :mod:`~wamzoo_aha_wam.executor` (``action_expert`` ``aha-wam.executor``): action chunks, chunk-causal
  teacher forcing, per-chunk times, the prior branch and the append-only action history;
- :mod:`~wamzoo_aha_wam.ovcr`: learned queries edit the planner's keys/values per chunk, gated;
- :mod:`~wamzoo_aha_wam.offsets`: horizon-adaptive planner/executor phase offsets in training;
- :mod:`~wamzoo_aha_wam.runtime`: the asynchronous runtime (background planner, timing statistics);
- :mod:`~wamzoo_aha_wam.coupling` (``coupling`` ``aha-wam.mot``): the two meet in one masked
  attention per layer.

Recipes: ``aha-wam``, ``aha-wam-no-ovcr``, ``aha-wam-no-offset`` (Meta-World, small), their
``-tiny`` versions (synthetic data, tests) and ``aha-wam-paper`` (the released model's size).

The pretrained name ``aha-wam.robotwin`` (:mod:`~wamzoo_aha_wam.pretrained`) converts the release
through the converter ``aha-wam.release`` (:mod:`~wamzoo_aha_wam.convert`).
"""

from pathlib import Path

from wamzoo.hookspecs import hookimpl

_TINY_PLANNER = {"latent_channels": 48, "dim": 32, "num_layers": 2, "num_heads": 2, "head_dim": 16,
                 "context_dim": 16, "history": 2, "frame_stride": 8}
_TINY_EXECUTOR = {"action_dim": 4, "horizon": 19, "dim": 16, "num_layers": 2, "num_heads": 2, "head_dim": 16,
                  "context_dim": 16, "chunk_size": 4, "num_chunks": 4, "max_offset": 3, "state_dim": 4,
                  "latent_channels": 48, "num_queries": 4}


@hookimpl
def register_components(register):
    register("world_model", "aha-wam.planner", "wamzoo_aha_wam.planner:Planner", tiny=_TINY_PLANNER)
    register("action_expert", "aha-wam.executor", "wamzoo_aha_wam.executor:Executor", tiny=_TINY_EXECUTOR)
    register("coupling", "aha-wam.mot", "wamzoo_aha_wam.coupling:AHAWAMCoupling", tiny={"refresh_every": 2})


@hookimpl
def register_recipes(register):
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_pretrained(register):
    from wamzoo_aha_wam.pretrained import PRETRAINED

    register(*PRETRAINED)


@hookimpl
def register_converters(register):
    from wamzoo_aha_wam.pretrained import RELEASE

    register(RELEASE, "wamzoo_aha_wam.convert:convert_release")
