"""Converter for the released X-WAM checkpoints (HF ``sharinka0715/X-WAM-checkpoints``).

``x-wam.release`` reads one training run of the release (names: :mod:`wamzoo_x_wam.pretrained`):

- ``<run>/checkpoints/last.ckpt/checkpoint/mp_rank_00_model_states.pt``: the DeepSpeed model-states
  file Lightning's ``DeepSpeedStrategy`` writes for ``last.ckpt`` (``scripts/train_sft.py``). Its
  ``"module"`` entry is ``XWAMRunner.state_dict()``: the network ``model.*`` (``XWAMModel``), the
  frozen umt5-xxl encoder ``text_encoder.model.*`` and the frozen Wan2.2 VAE ``vae.mean``,
  ``vae.std``, ``vae.model.*``. The other top-level entries are DeepSpeed's (``buffer_names``,
  ``param_shapes``, ``optimizer`` (None under ZeRO), ``lr_scheduler``, ``ds_config``, ...) and
  Lightning's client state (``epoch``, ``global_step``, ``loops``, ``callbacks``,
  ``lr_schedulers``, ...): each is consumed by a drop rule with its reason; an entry no rule knows is
  reported like any leftover key. The file is read with ``torch.load(weights_only=True)`` only
  (:func:`wamzoo.hub.load_weights_only`): it holds tensors, ``torch.Size``, containers and plain
  values only (the runner saves no hyper-parameters), and the release's own ``policy_server.py`` and
  ``train_sft.py`` load it with ``torch.load``'s default, which is ``weights_only=True`` since torch 2.6
  (the code is tested on 2.8).
- ``<run>/config.yaml``: the run config ``train_sft.py`` saves (model config merged with the data
  config under ``dataset``). Facts read from it: ``dataset.statistics`` (q01/q99), ``video_size``,
  ``frame_num`` / ``sequence_length``, ``frame_skip`` / ``action_skip``, ``action_dim``,
  ``proprio_dim``, ``num_extra_layers``, ``use_depth``, ``time_shifting``, ``sample_steps``,
  ``action_denoise_steps``, ``use_decoupled_inference`` and ``flow_matching_num_train_timesteps``.
  Sizes come from the tensor shapes; the head count (not visible in a shape; Wan2.2-TI2V-5B: 24) is
  the option ``num_heads``.

Weight names (``XWAMModel`` = Wan2.2's ``WanModel`` naming -> wamzoo; block and embedding rules are
the shared :data:`wamzoo.convert.WAN_BLOCK` / ``WAN_EMBED``):

=========================================  =====================================================
upstream (``module``)                      wamzoo
=========================================  =====================================================
``model.blocks.<i>.*``                     ``world_model.dit.blocks.<i>.*``
``model.{text,time}_embedding.*``,         ``world_model.dit.condition_embedder.*``
``model.time_projection.1``
``model.patch_embedding.*``                ``world_model.dit.patch_embedding.*``
``model.head.head`` / ``.modulation``      ``world_model.dit.proj_out`` / ``scale_shift_table``
``model.view_embedding.weight``            ``world_model.view_embedding.weight``
``model.extra_blocks.0.<j>.*``             ``world_model.depth.blocks.<j>.*`` (depth branch)
``model.extra_heads.0.head`` / ``.modul.`` ``world_model.depth.head.proj_out`` / ``scale_shift_table``
``model.action_{encoder,decoder}.{0,2}``   ``action_expert.action_{encoder,decoder}.{0,2}``
``model.proprio_{encoder,decoder}.{0,2}``  ``action_expert.state_{encoder,decoder}.{0,2}``
``text_encoder.*``, ``vae.model.*``        dropped: frozen umt5-xxl / Wan2.2 VAE (see below)
``vae.mean``, ``vae.std``                  checked equal to the codec's ``latents_mean/std``, dropped
=========================================  =====================================================

What carries over, as the release's ``evaluation/policy_server.py`` runs it:

- Normalisation: q01/q99 built exactly as the server's ``build_statistics`` -> ``quantile``: state
  ``[left xyz (proprio_left_ee_xyz), left quaternion (identity: -1, 1), left gripper (gripper_pos),
  right ...]`` (16-d; a single-arm run has identity statistics for the right arm), actions ``[xyz
  (action_<arm>_ee_xyz), axis-angle (action_<arm>_ee_axisangle), gripper (gripper_action)]`` per arm.
  The server's single-arm (RoboCasa) runs return only the first 7 of the network's 14 action
  dimensions and negate the gripper (dimension 6) after unnormalising; the converted policy keeps all
  14 (dimensions 7-13 get identity statistics; ``upstream["action_dims_used"]`` = 7) and represents
  the sign exactly by a change of coordinates: the column of ``action_encoder.0.weight`` and the row
  of ``action_decoder.2`` of dimension 6 are negated and its statistics become ``(-q99, -q01)``, so
  the denoised variable is the robot's gripper command itself. The sampler is symmetric, so actions
  have the release's distribution; with one noise draw, that dimension starts from the opposite noise.
- Cameras: three views, each encoded on its own by the Wan2.2 VAE and given its own tokens with a
  learned view embedding, in the run's order (``options.cameras``; the view-embedding index), at the
  run's ``video_size`` (256 x 320).
- Sequence: one full-attention sequence of video, 32 actions (RoPE frame positions ``k / 16``) and 9
  states (``j / 4``); the depth branch (``extra_blocks``) reads everything and is skipped for actions.
- Inference: the clean current latent frame and state token at t = 0; UniPC on the release's grid,
  ``action_denoise_steps`` (10) for action and state, ``sample_steps`` (50) for video; early stop
  after the action steps (the server's ``early_stop=True``, ``run_depth=False``). The grid is
  ``FlowUniPCMultistepScheduler(shift=1).set_timesteps(n, shift=time_shifting)``'s
  (``utils/fm_solvers_unipc.py``): ``phi(linspace(sigma_max, sigma_min, n + 1)[:-1])``, then 0, with
  the training sigmas' ``sigma_max = 1 - 1/1000`` and ``sigma_min = 0``, i.e. the scheduler option
  ``infer_grid: [0.999, 0]`` (:data:`RELEASE_GRID`; diffusers' own UniPC grid is ``[1, 1/1000]``).
- The VAE is not converted: ``vae.model.*`` is the frozen Wan2.2 VAE (``requires_grad_(False)``, not in
  the optimizer), identical to ``Wan2.2_VAE.pth``; the codec is diffusers' conversion of those weights
  (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``, option ``codec``). The checkpoint's ``vae.mean``/``vae.std``
  are compared with the codec's latent statistics (a mismatch is an error).

What cannot be represented (settings are kept in ``policy.config["upstream"]["not_applied"]``):

- The server's image preprocessing: resize to ``video_size`` and a 0.95 centre crop resized back
  (bilinear, no antialias). Give the cameras at 256 x 320 and crop in the evaluator.
- The model's timestep: the release feeds ``int64(σ · 1000)`` (the scheduler's integer timesteps) to
  the time embedding while stepping with the float σ; wamzoo feeds ``σ · 1000``.
- Single-arm runs: the server zeroes normalised state dimensions 8-15; wamzoo normalises them with
  identity statistics (equal for the RoboCasa client, which sends zeros there).
- Classifier-free guidance (the clients send ``cfg: 0``: none), the per-request seed, the executed
  actions per chunk (``action_length`` 32) and bf16 inference.
- Depth: the branch is converted, but the pixel encoding of the release's depth videos is fixed by
  its datasets, not its code; wamzoo's ``pixels_to_depth`` (inverse depth ``near / d``) is not known
  to match, so metric depth from :func:`wamzoo_x_wam.inference.predict_4d` is uncalibrated.
- Refused: more than one extra modality branch, an action per several environment steps
  (``action_skip`` > 1), ``flow_matching_num_train_timesteps`` other than 1000 (the model's time
  scale and the grid's ``sigma_max`` depend on it; wamzoo's is 1000), a codec whose latent frame
  spans other than the code's 4 frames (its action and state RoPE positions hard-code the Wan2.2
  VAE's stride), or an output width other than the input channels. The time-frequency width is read
  from the weights (``time_embedding.0``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from wamzoo.convert import PROVIDED, StateMap, build_policy, complete_stats, need_file
from wamzoo.errors import LoadError
from wamzoo.instructions import WAN_UMT5

from wamzoo_x_wam.pretrained import RELEASE

WAN_VAE = {"name": "wan-vae", "pretrained": "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "subfolder": "vae"}
#: Latent frames per pixel frame the code hard-codes in its action/state RoPE (``XWAMModel``:
#: ``scale=action_num * 4`` and ``scale=4``), the Wan2.2 VAE's temporal stride.
FRAMES_PER_LATENT = 4
#: The code's ``flow_matching_num_train_timesteps`` (the model's time is ``sigma * 1000``, as wamzoo's).
TRAIN_TIMESTEPS = 1000
#: End points of the release's inference grid before the shift (``FlowUniPCMultistepScheduler``:
#: ``sigma_max = 1 - 1/1000``, ``sigma_min = 0``), the scheduler option ``infer_grid``.
RELEASE_GRID = (1.0 - 1.0 / TRAIN_TIMESTEPS, 0.0)

#: Top-level entries of the model-states file besides ``module``: DeepSpeed's ``_save_checkpoint``
#: state and Lightning's client state (``DeepSpeedStrategy.save_checkpoint``).
TRAINING_ENTRIES = {
    "buffer_names": "DeepSpeed: names of the module's buffers (the buffers are in 'module')",
    "optimizer": "DeepSpeed: optimizer state (training only; None under ZeRO)",
    "param_shapes": "DeepSpeed ZeRO: parameter shapes for re-partitioning the optimizer state",
    "frozen_param_shapes": "DeepSpeed ZeRO: shapes of the frozen parameters (text encoder, VAE)",
    "frozen_param_fragments": "DeepSpeed ZeRO: partitions of the frozen parameters (text encoder, VAE)",
    "shared_params": "DeepSpeed ZeRO: tied-parameter table",
    "lr_scheduler": "DeepSpeed: its own learning-rate scheduler (None; Lightning's is in lr_schedulers)",
    "data_sampler": "DeepSpeed: curriculum data sampler (training only)",
    "random_ltd": "DeepSpeed: random layer-token-drop schedule (training only)",
    "sparse_tensor_module_names": "DeepSpeed: sparse-gradient module names (training only)",
    "skipped_steps": "DeepSpeed: overflow-skipped steps (training only)",
    "global_steps": "DeepSpeed: step counter (Lightning's global_step is kept)",
    "global_samples": "DeepSpeed: sample counter (training only)",
    "dp_world_size": "DeepSpeed: data-parallel world size of the run",
    "mp_world_size": "DeepSpeed: model-parallel world size of the run",
    "ds_config": "DeepSpeed: engine config of the run (training only)",
    "ds_version": "DeepSpeed: version of the writer (kept)",
    "universal_checkpoint_info": "DeepSpeed: universal-checkpoint conversion info (training only)",
    "epoch": "Lightning: epoch counter (kept)",
    "global_step": "Lightning: step counter (kept)",
    "pytorch-lightning_version": "Lightning: version of the writer (kept)",
    "loops": "Lightning: training-loop progress (training only)",
    "callbacks": "Lightning: callback states, e.g. ModelCheckpoint (training only)",
    "lr_schedulers": "Lightning: learning-rate scheduler states (training only)",
    "optimizer_states": "Lightning: optimizer states (training only)",
    "hparams_name": "Lightning: hyper-parameter bookkeeping (the run config is config.yaml)",
    "hyper_parameters": "Lightning: hyper-parameters (the run config is config.yaml)",
}
KEPT = ("global_step", "epoch", "pytorch-lightning_version", "ds_version")


# -- reading the release -----------------------------------------------------------------------
def read_config(path: str | Path) -> dict[str, Any]:
    """The run's ``config.yaml`` (plain YAML written by ``OmegaConf.save(resolve=True)``)."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise LoadError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}); re-download it") from None
    if not isinstance(cfg, Mapping):
        raise LoadError(f"{path}: expected the run config (a mapping), got {type(cfg).__name__}")
    return dict(cfg)


def read_model_states(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``mp_rank_00_model_states.pt`` -> (flat state, kept metadata), read weights-only.

    The state holds every key of ``module`` plus every other top-level entry under its own name,
    so that each is consumed by a rule (or reported as a leftover)."""
    from wamzoo.hub import load_weights_only

    payload = load_weights_only(path)
    name = Path(path).name
    if not isinstance(payload, Mapping) or not isinstance(payload.get("module"), Mapping):
        got = sorted(payload) if isinstance(payload, Mapping) else type(payload).__name__
        raise LoadError(f"{name}: expected DeepSpeed model states with a 'module' state dict, got {got}")
    state: dict[str, Any] = dict(payload["module"])
    for key, value in payload.items():
        if key == "module":
            continue
        if key in state:
            raise LoadError(f"{name}: top-level entry {key!r} clashes with a module key")
        state[key] = value
    meta = {k: payload[k] for k in KEPT if isinstance(payload.get(k), (int, float, str))}
    return state, meta


def dataset_config(cfg: Mapping[str, Any], dataset: str | None, source: str) -> dict[str, Any]:
    """The data config whose statistics the run normalises with (``dataset``; or one of ``datasets``)."""
    single = cfg.get("dataset")
    if isinstance(single, Mapping) and dataset is None:
        return dict(single)
    many = cfg.get("datasets")
    if isinstance(many, Mapping) and many:
        if dataset is None and len(many) == 1:
            return dict(next(iter(many.values())))
        if dataset in many:
            return dict(many[dataset])
        raise LoadError(f"{source}: the run has the datasets {sorted(many)}; choose whose statistics to use"
                        f" (option dataset=...), got {dataset!r}")
    raise LoadError(f"{source}: the run config has no data config with statistics ('dataset' is {single!r})")


# -- statistics (the server's build_statistics) ---------------------------------------------------
def _stat(block: Mapping[str, Any], key: str, source: str) -> list[float]:
    if key not in block:
        raise LoadError(f"{source}: the statistics lack {key!r} (have {sorted(block)})")
    return [float(v) for v in block[key]]


def build_statistics(stats: Mapping[str, Any], source: str) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                                     bool]:
    """q01/q99 of state and action as the release's ``policy_server.build_statistics`` (see module doc).

    Returns ``(state, action, has_right_arm)`` with ``{"q01": [...], "q99": [...]}`` each."""
    q01, q99 = stats.get("q01"), stats.get("q99")
    if not isinstance(q01, Mapping) or not isinstance(q99, Mapping):
        raise LoadError(f"{source}: statistics need 'q01' and 'q99' blocks, got {sorted(stats)}")
    right = "proprio_right_ee_xyz" in q01
    arms = ("left", "right") if right else ("left",)
    state, action = {}, {}
    for name, block in (("q01", q01), ("q99", q99)):
        ident = -1.0 if name == "q01" else 1.0
        s: list[float] = []
        a: list[float] = []
        for arm in arms:
            s += _stat(block, f"proprio_{arm}_ee_xyz", source) + [ident] * 4 + _stat(block, "gripper_pos", source)
            a += (_stat(block, f"action_{arm}_ee_xyz", source) + _stat(block, f"action_{arm}_ee_axisangle", source)
                  + _stat(block, "gripper_action", source))
        if not right:
            s += [ident] * 8
        state[name], action[name] = s, a
    return state, action, right


# -- sizes from the weights --------------------------------------------------------------------
def _shape(state: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise LoadError(f"{source}: no tensor {key!r}; this is not an X-WAM checkpoint (or a truncated one)")
    return tuple(value.shape)


def _indices(state: Mapping[str, Any], pattern: str) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for k in state:
        m = re.fullmatch(pattern, k)
        if m:
            out.setdefault(int(m.group(1)), set()).add(int(m.group(2)) if m.re.groups > 1 else 0)
    return out


def sizes_from_weights(state: Mapping[str, Any], num_heads: int, source: str) -> dict[str, Any]:
    """Constructor sizes from the tensor shapes of ``model.*`` (``num_heads`` is not visible in them)."""
    dim, in_ch, *patch = _shape(state, "model.patch_embedding.weight", source)
    if patch[0] != 1:
        raise LoadError(f"{source}: temporal patch size {patch[0]}; wamzoo's DiT needs 1 (per-frame timesteps)")
    layers = sorted(_indices(state, r"model\.blocks\.(\d+)\..*"))
    if layers != list(range(len(layers))) or not layers:
        raise LoadError(f"{source}: blocks {layers} are not 0..n-1")
    extra = _indices(state, r"model\.extra_blocks\.(\d+)\.(\d+)\..*")
    heads = set(_indices(state, r"model\.extra_heads\.(\d+)\..*"))
    if set(extra) - {0} or heads - {0}:
        raise LoadError(f"{source}: the checkpoint has {max(len(extra), len(heads))} extra modality branches"
                        f" (model.extra_blocks.{sorted(extra)}, model.extra_heads.{sorted(heads)}); wamzoo's X-WAM"
                        " world model has one, the depth branch, so such a checkpoint cannot be represented")
    if set(extra) != heads:
        raise LoadError(f"{source}: extra blocks {sorted(extra)} without matching extra heads {sorted(heads)}")
    depth = sorted(extra.get(0, set()))
    if depth != list(range(len(depth))) or len(depth) > len(layers):
        raise LoadError(f"{source}: depth-branch blocks {depth} are not 0..M-1 with M <= {len(layers)}")
    if dim % num_heads:
        raise LoadError(f"{source}: width {dim} is not divisible by num_heads={num_heads}")
    out = _shape(state, "model.head.head.weight", source)[0]
    if out != in_ch * math.prod(patch):
        raise LoadError(f"{source}: the head predicts {out // math.prod(patch)} channels for {in_ch} input channels;"
                        " wamzoo's video DiT predicts its input channels")
    return {"dim": dim, "ffn_dim": _shape(state, "model.blocks.0.ffn.0.weight", source)[0], "num_layers": len(layers),
            "num_heads": num_heads, "head_dim": dim // num_heads, "patch_size": [int(p) for p in patch],
            "depth_layers": len(depth), "latent_channels": in_ch,
            "freq_dim": _shape(state, "model.time_embedding.0.weight", source)[1],
            "text_dim": _shape(state, "model.text_embedding.0.weight", source)[1],
            "num_views": _shape(state, "model.view_embedding.weight", source)[0],
            "action_dim": _shape(state, "model.action_encoder.0.weight", source)[1],
            "state_dim": _shape(state, "model.proprio_encoder.0.weight", source)[1]}


# -- weight names ------------------------------------------------------------------------------
def _negate(dims: Sequence[int], axis: int):
    def transform(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        index = [slice(None)] * t.ndim
        index[axis if t.ndim > 1 else 0] = list(dims)
        t[tuple(index)] = -t[tuple(index)]
        return t

    return transform


def release_map(flip: Sequence[int] = ()) -> StateMap:
    """Rules for ``XWAMRunner.state_dict()`` and the other top-level entries (see module doc).

    ``flip``: action dimensions whose sign the release flips after unnormalising, folded into the
    action MLPs (input column of ``action_encoder.0``, output row of ``action_decoder.2``)."""
    m = StateMap("X-WAM release")
    if flip:
        m.rename(r"model\.action_encoder\.0\.weight", "action_expert.action_encoder.0.weight", _negate(flip, 1))
        m.rename(r"model\.action_decoder\.2\.(weight|bias)", r"action_expert.action_decoder.2.\1", _negate(flip, 0))
    m.wan_blocks(r"model\.blocks\.(\d+)\.", "world_model.dit.blocks.")
    m.wan_blocks(r"model\.extra_blocks\.0\.(\d+)\.", "world_model.depth.blocks.")
    m.wan_embeddings("model.", "world_model.dit.")
    m.rename(r"model\.patch_embedding\.(weight|bias)", r"world_model.dit.patch_embedding.\1")
    m.rename(r"model\.head\.head\.(weight|bias)", r"world_model.dit.proj_out.\1")
    m.rename(r"model\.head\.modulation", "world_model.dit.scale_shift_table")
    m.rename(r"model\.extra_heads\.0\.head\.(weight|bias)", r"world_model.depth.head.proj_out.\1")
    m.rename(r"model\.extra_heads\.0\.modulation", "world_model.depth.head.scale_shift_table")
    m.rename(r"model\.view_embedding\.weight", "world_model.view_embedding.weight")
    for src, dst in (("action_encoder", "action_encoder"), ("action_decoder", "action_decoder"),
                     ("proprio_encoder", "state_encoder"), ("proprio_decoder", "state_decoder")):
        m.rename(rf"model\.{src}\.([02])\.(weight|bias)", rf"action_expert.{dst}.\1.\2")
    m.drop(r"text_encoder\..*", "frozen umt5-xxl text encoder (requires_grad_(False)); wamzoo's text encoder"
                                " (policy.context.text_encoder) loads it from the Hugging Face cache")
    m.drop(r"vae\.model\..*", "frozen Wan2.2 VAE (requires_grad_(False), not optimised) = Wan2.2_VAE.pth; the codec"
                              " loads diffusers' conversion of the same weights")
    m.drop(r"vae\.(mean|std)", "Wan2.2 VAE latent statistics; checked equal to the codec's latents_mean/std")
    for entry, reason in TRAINING_ENTRIES.items():
        m.drop(re.escape(entry), reason)
    return m


# -- the policy ----------------------------------------------------------------------------------
def policy_section(sizes: Mapping[str, Any], codec: Mapping[str, Any] | None, action_num: int, shift: float,
                   video_steps: int, action_steps: int, text_len: int = 512) -> dict[str, Any]:
    """The recipe ``policy`` section: the ``x-wam-paper`` recipe at the checkpoint's sizes; text instructions as
    the release encodes them (umt5-xxl, ``text_len`` tokens, padding positions kept)."""
    from wamzoo.recipes import compose, to_plain

    policy = to_plain(compose("x-wam-paper").policy)
    policy["world_model"].update({k: sizes[k] for k in ("dim", "ffn_dim", "num_layers", "num_heads", "head_dim",
                                                        "patch_size", "depth_layers", "freq_dim")})
    policy["action_expert"].update({"dim": sizes["dim"], "frame_stride": int(action_num), "state_tokens": "frames"})
    policy["scheduler"].update({"shift": float(shift), "video_steps": int(video_steps),
                                "action_steps": int(action_steps), "infer_grid": list(RELEASE_GRID)})
    policy["codec"] = dict(codec or WAN_VAE)
    policy["context"] = {"dim": sizes["text_dim"], "num_tasks": 0, "state_token": False,
                         "text_encoder": {**WAN_UMT5, "max_length": int(text_len), "zero_padding": False}}
    policy["normalize"] = {"action": "quantile", "state": "quantile"}
    return policy


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise LoadError(message)


def convert_release(files: Mapping[str, Path], *, checkpoint: str, config: str, cameras: Sequence[str],
                    num_heads: int = 24, codec: Mapping[str, Any] | None = None, dataset: str | None = None,
                    video_steps: int | None = None, action_steps: int | None = None):
    """A :class:`~wamzoo.policy.WAMPolicy` from one run of the X-WAM release (see the module docstring).

    Args:
        checkpoint, config: names of the model-states file and the run config in ``files``.
        cameras: camera names in view-embedding order (the run's observation keys, sorted).
        num_heads: attention heads (not visible in the tensor shapes; Wan2.2-TI2V-5B: 24).
        codec: codec config (default: the Wan2.2 VAE from ``Wan-AI/Wan2.2-TI2V-5B-Diffusers``).
        dataset: whose statistics to use when the run config lists several ``datasets``.
        video_steps, action_steps: UniPC steps (default: the config's ``sample_steps`` and
            ``action_denoise_steps``, as the server's defaults 50 and 10).
    """
    from wamzoo.data.info import DataInfo

    ckpt = need_file(files, checkpoint, RELEASE)
    source = f"X-WAM {checkpoint}"
    cfg = read_config(need_file(files, config, RELEASE))
    data = dataset_config(cfg, dataset, source)
    state, meta = read_model_states(ckpt)
    sizes = sizes_from_weights(state, num_heads, source)

    # facts of the run, checked against the weights
    for key, have in (("action_dim", sizes["action_dim"]), ("proprio_dim", sizes["state_dim"])):
        _check(cfg.get(key) is None or int(cfg[key]) == have, f"{source}: config {key}={cfg.get(key)} but the"
                                                                f" weights have {have}")
    depth = bool(cfg.get("use_depth", sizes["depth_layers"] > 0))
    _check(depth == (sizes["depth_layers"] > 0), f"{source}: config use_depth={depth} but the weights have"
                                                  f" {sizes['depth_layers']} depth-branch blocks")
    if depth and cfg.get("num_extra_layers") is not None:
        _check(int(cfg["num_extra_layers"]) == sizes["depth_layers"], f"{source}: config num_extra_layers="
               f"{cfg['num_extra_layers']} but the weights have {sizes['depth_layers']} depth-branch blocks")
    _check(len(cameras) == sizes["num_views"], f"{source}: {len(cameras)} cameras {list(cameras)} for"
                                                f" {sizes['num_views']} view embeddings")
    frame_skip, action_skip = int(data.get("frame_skip", 4)), int(data.get("action_skip", 1))
    _check(action_skip == 1, f"{source}: action_skip={action_skip}: each action spans {action_skip} steps, which"
                             " wamzoo's X-WAM (one action per environment step) cannot represent")
    action_num = frame_skip // action_skip
    train_timesteps = int(cfg.get("flow_matching_num_train_timesteps", TRAIN_TIMESTEPS))
    _check(train_timesteps == TRAIN_TIMESTEPS, f"{source}: flow_matching_num_train_timesteps={train_timesteps}: the"
           f" model's time is sigma * {train_timesteps} and its grid starts at 1 - 1/{train_timesteps}; wamzoo's"
           f" X-WAM feeds sigma * {TRAIN_TIMESTEPS}, so such a run cannot be represented")
    frames = int(cfg.get("frame_num", data.get("sequence_length", 9)))
    height, width = (int(x) for x in data.get("video_size", (256, 320)))
    shift = float(cfg.get("time_shifting", 5.0))
    video_steps = int(video_steps or cfg.get("sample_steps", 50))
    if action_steps is None:
        action_steps = int(cfg.get("action_denoise_steps", 10)) if cfg.get("use_decoupled_inference", True) \
            else video_steps

    # statistics, as the policy server builds them
    statistics = data.get("statistics")
    _check(isinstance(statistics, Mapping), f"{source}: the data config has no 'statistics' (q01/q99)")
    state_q, action_q, right = build_statistics(statistics, source)
    _check(len(state_q["q01"]) == sizes["state_dim"], f"{source}: {len(state_q['q01'])}-d state statistics for a"
                                                       f" {sizes['state_dim']}-d state")
    used = len(action_q["q01"])
    _check(used <= sizes["action_dim"], f"{source}: {used}-d action statistics for {sizes['action_dim']}-d actions")
    flip = [] if right else [6]  # the server negates the single-arm gripper after unnormalising
    for d in flip:
        action_q["q01"][d], action_q["q99"][d] = -action_q["q99"][d], -action_q["q01"][d]
    pad = sizes["action_dim"] - used
    action_q = {k: v + [-1.0 if k == "q01" else 1.0] * pad for k, v in action_q.items()}
    stats = {"state": complete_stats(state_q, "quantile", f"{source} state"),
             "action": complete_stats(action_q, "quantile", f"{source} action")}

    info = DataInfo(action_dim=sizes["action_dim"], state_dim=sizes["state_dim"], num_views=len(cameras),
                    height=height, width=width, horizon=(frames - 1) * action_num, n_obs=1, n_future=frames - 1,
                    frame_stride=action_num, cameras=list(cameras), stats=stats)
    converted = release_map(flip).apply(state, source)
    policy = policy_section(sizes, codec, action_num, shift, video_steps, action_steps, int(cfg.get("text_len", 512)))
    not_applied = {
        "preprocessing": f"resize to {[height, width]} and a 0.95 centre crop resized back (bilinear, no antialias)",
        "model_timestep": "int64(sigma * 1000) in the release, sigma * 1000 here",
        "cfg": "classifier-free guidance (the clients send cfg 0)", "executed_actions_per_chunk": 32,
        "inverse_gripper": bool(data.get("inverse_gripper", False))}
    if not right:
        not_applied["state_zeroed_dims"] = list(range(8, sizes["state_dim"]))
    model = build_policy(policy, info, converted, PROVIDED, upstream={
        "format": RELEASE, "files": [checkpoint, config], **meta, "action_dims_used": used,
        "folded": {"gripper_sign": flip}, "not_applied": not_applied})

    fpl = model.action_expert.frames_per_latent
    _check(fpl == FRAMES_PER_LATENT, f"{source}: the codec puts {fpl:g} frames in a latent frame, but X-WAM's action"
           f" and state RoPE positions assume the Wan2.2 VAE's {FRAMES_PER_LATENT}; such a codec cannot act like it")
    _check_latent_stats(model.codec, state, source)
    return model


def _check_latent_stats(codec, state: Mapping[str, Any], source: str) -> None:
    """The release's latent normalisation (``vae.mean``/``vae.std``) must be the codec's."""
    for name in ("mean", "std"):
        theirs, ours = state.get(f"vae.{name}"), getattr(codec, name, None)
        if not isinstance(theirs, torch.Tensor) or ours is None:
            continue
        ours = ours.flatten().float()
        if theirs.numel() != ours.numel() or not torch.allclose(theirs.flatten().float(), ours, atol=1e-4):
            raise LoadError(f"{source}: the release normalises VAE latents with vae.{name} ="
                            f" {theirs.flatten()[:4].tolist()}... but the codec uses {ours[:4].tolist()}...; use the"
                            " codec of the release (Wan2.2 VAE)")
