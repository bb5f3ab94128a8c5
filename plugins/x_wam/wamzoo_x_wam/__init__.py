"""X-WAM for wamzoo: one DiT denoises multi-view RGB-D video, proprioception and actions together
(the X-WAM paper; public code: github.com/sharinka0715/X-WAM).

Components (registered lazily):

- ``world_model`` ``x-wam.video``: multi-view Wan-style video DiT with learned view embeddings
  that lends its blocks to the action tokens, plus the depth branch (:mod:`wamzoo_x_wam.world_model`,
  :mod:`wamzoo_x_wam.depth_branch`);
- ``action_expert`` ``x-wam.action``: action and state MLP tokens at fractional RoPE positions,
  riding on the world model's DiT (:mod:`wamzoo_x_wam.action`);
- ``scheduler`` ``x-wam.ans``: Asynchronous Noise Sampling, the decoupled and synchronous
  schedules, UniPC inference with early stop (:mod:`wamzoo_x_wam.ans`);
- ``data`` ``x-wam.metaworld``: the benchmark's windows plus future states (:mod:`wamzoo_x_wam.data`).

The coupling is the core's ``mot`` with X-WAM's mask: full attention over video, action and state;
depth reads everything, nothing reads depth. :func:`wamzoo_x_wam.inference.predict_4d` returns
RGB, depth and point clouds; :mod:`wamzoo_x_wam.metrics` scores them against the simulator.
Recipes: ``x-wam`` (ANS, asynchronous inference), ``x-wam-decoupled``, ``x-wam-sync`` (Meta-World,
small), their ``-tiny`` versions (synthetic data, tests) and ``x-wam-paper`` (Wan2.2-5B size).

Pretrained names (:mod:`wamzoo_x_wam.pretrained`) load the released checkpoints through the
converter ``x-wam.release`` (:mod:`wamzoo_x_wam.convert`).
"""

from pathlib import Path

from wamzoo.hookspecs import hookimpl

#: X-WAM's attention: one full-attention sequence [video, action, state]; the depth branch reads
#: everything and nothing reads it.
MASK = {"* -> *": "all", "video.* -> depth.*": "none", "action -> depth.*": "none", "state.* -> depth.*": "none"}

_TINY_VIDEO = {"latent_channels": 48, "dim": 32, "num_layers": 3, "num_heads": 2, "head_dim": 16, "context_dim": 16,
               "depth_layers": 1}
_TINY_ACTION = {"action_dim": 4, "state_dim": 4, "horizon": 8, "dim": 32, "n_future": 2, "future_frames": 2,
                "frame_stride": 4}


@hookimpl
def register_components(register):
    register("world_model", "x-wam.video", "wamzoo_x_wam.world_model:XWAMWorldModel", tiny=_TINY_VIDEO)
    register("action_expert", "x-wam.action", "wamzoo_x_wam.action:XWAMActionExpert", tiny=_TINY_ACTION)
    register("scheduler", "x-wam.ans", "wamzoo_x_wam.ans:XWAMScheduler", tiny={"video_steps": 4, "action_steps": 2})
    register("data", "x-wam.metaworld", "wamzoo_x_wam.data:XWAMMetaWorldDataModule",
             tiny={"root": "data/metaworld/x-wam-tiny", "episodes": 1, "suite": "mw-easy"})


@hookimpl
def register_recipes(register):
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_pretrained(register):
    from wamzoo_x_wam.pretrained import PRETRAINED

    register(*PRETRAINED)


@hookimpl
def register_converters(register):
    from wamzoo_x_wam.pretrained import RELEASE

    register(RELEASE, "wamzoo_x_wam.convert:convert_release")
