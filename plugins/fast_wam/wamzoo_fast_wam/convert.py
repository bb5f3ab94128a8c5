"""Converters for released Fast-WAM checkpoints (the public code and LeRobot's Fast-WAM policy).

Two formats, one network. Both run the code's ``FastWAM`` (``MoT`` over ``mixtures.video``, a
Wan2.2-TI2V-5B DiT, and ``mixtures.action``, the ``ActionDiT``) plus a ``proprio_encoder``:

- ``fast-wam.release``: the ``.pt`` files of HF ``yuanty/fastwam`` written by
  ``FastWAM.save_checkpoint``: ``{"mot": MoT.state_dict(), "proprio_encoder": ..., "step": int,
  "torch_dtype": str[, "optimizer": ...]}`` (blocks under ``mixtures.<expert>.blocks.<i>.``),
  plus ``<name>_dataset_stats.json`` (``{"action"|"state": {"default": {"global_min", ...,
  "stepwise_min", ...}}, "num_episodes", "num_transition"}``). The ``.pt`` is read with
  ``torch.load(weights_only=True)`` only (:func:`wamzoo.hub.load_weights_only`). The file
  holds no configuration: sizes are read from the tensor shapes; the head count (not visible in
  a shape) is the option ``num_heads`` (24 in both releases); the data facts (cameras, layout,
  horizon, normalisation mode) are the options of the registered names, taken from the code's
  ``configs/data/*.yaml`` and deploy code.
- ``fast-wam.lerobot``: a LeRobot (>= 0.6) ``FastWAMPolicy`` folder: ``config.json`` (``type:
  fastwam``, ``video_dit_config``, ``action_dit_config``, ``image_size``, features,
  ``normalization_mapping``, ...), ``model.safetensors`` (``model.mot.mixtures.{video,action}.*``,
  blocks re-parented to ``model.mot.layers.<i>.blocks.{video,action}.*``; the older layout
  ``model.mot.mixtures.<expert>.blocks.<i>.*`` is accepted too, like LeRobot's own loader),
  ``model.proprio_encoder.*``, and the processors ``policy_preprocessor.json`` /
  ``policy_postprocessor.json`` with the (un)normaliser statistics in the safetensors files they
  name (flat ``"observation.state.mean"``, ``"action.std"``, ...).

Weight names (the code's DiffSynth/Wan2.2 names -> wamzoo = diffusers ``WanTransformer3DModel``; the
block and embedding rules are the shared :data:`wamzoo.convert.WAN_BLOCK` / ``WAN_EMBED``):

======================================  ==================================================
upstream (per expert)                   wamzoo (``world_model.dit.`` / ``action_expert.dit.``)
======================================  ==================================================
``patch_embedding.*`` (video)           ``patch_embedding.*``
``action_encoder.*`` (action)           ``action_encoder.*``
``text_embedding.0`` / ``.2``           ``condition_embedder.text_embedder.linear_1`` / ``linear_2``
``time_embedding.0`` / ``.2``           ``condition_embedder.time_embedder.linear_1`` / ``linear_2``
``time_projection.1``                   ``condition_embedder.time_proj``
``head.head`` / ``head.modulation``     ``proj_out`` / ``scale_shift_table`` (video)
``head`` (plain linear, action)         ``head``
block ``self_attn.{q,k,v,o}``           ``attn1.to_q`` / ``to_k`` / ``to_v`` / ``to_out.0``
block ``self_attn.norm_q`` / ``norm_k`` ``attn1.norm_q`` / ``norm_k``
block ``cross_attn.*``                  ``attn2.*`` (same sub-names)
block ``norm3`` (cross-attn LayerNorm)  ``norm2`` (diffusers' cross-attention norm)
block ``ffn.0`` / ``ffn.2``             ``ffn.net.0.proj`` / ``ffn.net.2``
block ``modulation`` ``[1, 6, D]``      ``scale_shift_table`` (same order: shift, scale, gate x 2)
``proprio_encoder.*``                   ``context.proprio.*`` (the appended context token)
======================================  ==================================================

The code's ``norm1`` / ``norm2`` (affine-free LayerNorms before self-attention and FFN) and the
head's ``norm`` have no weights; wamzoo's ``norm1`` / ``norm3`` / ``norm_out`` are the same.
Every upstream tensor maps one-to-one (no fused tensors); the optimizer state, if present, is
dropped (reported); ``step`` and ``torch_dtype`` are kept in ``policy.config["upstream"]``.
Weights are loaded as float32 (the releases are bf16).

What else carries over:

- Normalisation: LIBERO ``min/max``, RoboTwin ``z-score`` over the ``global_*`` statistics
  (``use_stepwise_action_norm: false`` in both) -> ``min_max`` / ``mean_std``; LeRobot
  ``MEAN_STD`` / ``MIN_MAX`` / ``QUANTILES`` -> ``mean_std`` / ``min_max`` / ``quantile``. The
  code's affine is reproduced exactly: dimensions whose range is below 1e-4 map to ``x - min``
  (stored as ``[min - 1, min + 1]``), z-score divides by ``std + 1e-8`` (stored as that std).
- Cameras: the code concatenates cameras in pixel space before the VAE, so the converted codec
  does too (:func:`wamzoo.codecs.compose_views`): LIBERO ``image`` | ``wrist_image`` side by side
  (224 x 448); RoboTwin ``cam_high`` resized to 256 x 320 above ``cam_left_wrist`` |
  ``cam_right_wrist`` at 128 x 160 each (384 x 320); LeRobot: the sorted
  ``observation.images.*`` keys, each resized to ``(H, W / n)`` of ``image_size``, side by side.
  Resizing is bilinear with antialiasing (the deploy code uses PIL bilinear).
- The VAE is not in the releases: the codec is ``WanVAECodec(pretrained=
  "Wan-AI/Wan2.2-TI2V-5B-Diffusers", subfolder="vae")`` (option ``codec``), diffusers' conversion
  of the Wan2.2 VAE the code loads from ``Wan-AI/Wan2.2-TI2V-5B`` (DiffSynth's ``WanVideoVAE38``;
  LeRobot uses the same diffusers VAE). Latents are normalised by the VAE's ``latents_mean/std``
  as in the code.
- Inference: first-frame-causal MoT; the video expert runs once over the clean current frame
  (t = 0, cached K/V), then ``num_inference_steps`` (10) Euler steps of the action expert on
  ``phi(linspace(1, 0, n + 1))`` with shift 5 (LeRobot: ``sigma_shift`` or
  ``action_scheduler.infer_shift``); context = instruction tokens followed by the proprio token.

What cannot be represented (kept in ``policy.config["upstream"]`` where it is a setting):

- The instruction: the code encodes ``"A video recorded from a robot's point of view executing
  the following instruction: {task}"`` with umt5-xxl (128 tokens, padding zeroed, mask all
  ones). wamzoo has no text encoder: pass those embeddings as ``batch.instruction``
  ``[B, 128, 4096]`` with an all-True ``instruction_mask``.
- The code clamps the normalised state to ``[-5, 5]``; wamzoo does not (differs only beyond
  5 normalised units). LeRobot normalises with ``std + 1e-8`` but unnormalises with ``std``;
  wamzoo uses ``std`` both ways. Degenerate (zero-range) LeRobot dimensions use eps 1e-8, wamzoo 1e-6.
- Action post-processing done outside the network: LIBERO gripper flip/binarise (release eval
  and LeRobot ``toggle_action_dimensions``), the executed steps per chunk (``replan_steps`` 10 /
  24, LeRobot ``n_action_steps``), LeRobot's fixed ``inference_seed`` (wamzoo draws noise from the
  generator given to ``predict_action``). These are the evaluator's business.
- A ``head_dim`` for which DiffSynth splits the RoPE channels differently from Wan2.2 / wamzoo
  (not the released 128) is refused (:func:`wamzoo.convert.check_diffsynth_rope`).
- Only the default ("uncond", first-frame-causal) variant is released; a ``video_attention_mask_mode``
  other than ``first_frame_causal`` or an action-conditioned video DiT is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from wamzoo.convert import (PROVIDED, Converted, StateMap, build_policy, check_diffsynth_rope, complete_stats,
                            linear_normalizer_stats, need_file, read_json, read_mot_payload, read_safetensors)
from wamzoo.errors import LoadError
from wamzoo.instructions import WAN_UMT5

from wamzoo_fast_wam.pretrained import LEROBOT, LEROBOT_FILES, RELEASE

WAN_VAE = {"name": "wan-vae", "pretrained": "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "subfolder": "vae"}

#: Expert-level modules besides the Wan embeddings (:data:`wamzoo.convert.WAN_EMBED`).
VIDEO_ONLY = (("patch_embedding", "patch_embedding"), ("head.head", "proj_out"))
ACTION_ONLY = (("action_encoder", "action_encoder"), ("head", "head"))
TARGET = {"video": "world_model.dit.", "action": "action_expert.dit."}


def fast_wam_map(name: str, expert_prefix: Mapping[str, str], block_prefixes: Mapping[str, list[str]],
                 proprio_prefix: str) -> StateMap:
    """Rules for one Fast-WAM layout.

    ``expert_prefix[e]`` is the (literal) prefix of expert ``e``'s own modules; ``block_prefixes[e]``
    are regexes of its block prefix with one group, the layer index.
    """
    m = StateMap(name)
    for expert, dst in TARGET.items():
        for block in block_prefixes[expert]:
            m.wan_blocks(block, f"{dst}blocks.")
        m.wan_embeddings(expert_prefix[expert], dst)
        src_prefix = re.escape(expert_prefix[expert])
        for src, tgt in VIDEO_ONLY if expert == "video" else ACTION_ONLY:
            m.rename(rf"{src_prefix}{re.escape(src)}\.(weight|bias)", rf"{dst}{tgt}.\1")
        if expert == "video":
            m.rename(rf"{src_prefix}head\.modulation", rf"{dst}scale_shift_table")
    m.rename(rf"{re.escape(proprio_prefix)}(weight|bias)", r"context.proprio.\1")
    return m


def release_map() -> StateMap:
    return fast_wam_map("Fast-WAM release", {e: f"mot.mixtures.{e}." for e in TARGET},
                        {e: [rf"mot\.mixtures\.{e}\.blocks\.(\d+)\."] for e in TARGET}, "proprio_encoder.")


def lerobot_map() -> StateMap:
    return fast_wam_map("LeRobot FastWAM", {e: f"model.mot.mixtures.{e}." for e in TARGET},
                        {e: [rf"model\.mot\.layers\.(\d+)\.blocks\.{e}\.",
                             rf"model\.mot\.mixtures\.{e}\.blocks\.(\d+)\."] for e in TARGET},
                        "model.proprio_encoder.")


# -- sizes from the weights ------------------------------------------------------------------
def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise LoadError(f"{source}: no {key!r}; this is not a Fast-WAM checkpoint (or a truncated one)")
    return tuple(state[key].shape)


def sizes_from_weights(state: Mapping[str, torch.Tensor], video: str, action: str, block: str, proprio: str,
                       num_heads: int, source: str) -> dict[str, Any]:
    """Constructor sizes of both experts from tensor shapes (``block`` formats ``expert`` and ``i``)."""
    dim, in_ch, *patch = _shape(state, f"{video}patch_embedding.weight", source)
    layers = {e: {int(m.group(1)) for k in state for m in [re.fullmatch(
        re.escape(block.format(expert=e, i="@")).replace("@", r"(\d+)") + r".*", k)] if m} for e in TARGET}
    if not layers["video"] or layers["video"] != layers["action"]:
        raise LoadError(f"{source}: the experts have layers {sorted(layers['video'])} and {sorted(layers['action'])};"
                        " Fast-WAM pairs every video layer with an action layer")
    b0 = {e: block.format(expert=e, i=min(layers[e])) for e in TARGET}
    attn = _shape(state, f"{b0['video']}self_attn.q.weight", source)[0]
    if attn % num_heads:
        raise LoadError(f"{source}: attention width {attn} is not divisible by num_heads={num_heads}")
    head_dim = attn // num_heads
    a_dim, action_dim = _shape(state, f"{action}action_encoder.weight", source)
    a_attn = _shape(state, f"{b0['action']}self_attn.q.weight", source)[0]
    if a_attn != attn:
        raise LoadError(f"{source}: action attention width {a_attn} != video {attn}; the experts share one attention")
    text_dim = _shape(state, f"{video}text_embedding.0.weight", source)[1]
    freq = {e: _shape(state, f"{p}time_embedding.0.weight", source)[1] for e, p in (("video", video), ("action", action))}
    state_dim = _shape(state, f"{proprio}weight", source)[1] if f"{proprio}weight" in state else 0
    return {
        "world_model": {"dim": dim, "ffn_dim": _shape(state, f"{b0['video']}ffn.0.weight", source)[0],
                        "num_layers": len(layers["video"]), "num_heads": num_heads, "head_dim": head_dim,
                        "patch_size": [int(p) for p in patch], "freq_dim": freq["video"]},
        "action_expert": {"dim": a_dim, "ffn_dim": _shape(state, f"{b0['action']}ffn.0.weight", source)[0],
                          "num_layers": len(layers["action"]), "num_heads": num_heads, "head_dim": head_dim,
                          "freq_dim": freq["action"]},
        "latent_channels": in_ch, "action_dim": action_dim, "state_dim": state_dim, "text_dim": text_dim,
    }


def policy_section(sizes: Mapping[str, Any], codec: Mapping[str, Any] | None, layout: str,
                   canvas: list[int], modes: Mapping[str, str], steps: int = 10, infer_shift: float = 5.0,
                   shift: float = 5.0, text_encoder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The recipe ``policy`` section: the ``fast-wam-paper`` recipe at the checkpoint's sizes, reading text
    instructions with ``text_encoder`` (default: Wan2.2's UMT5, 128 tokens)."""
    from wamzoo.recipes import compose, to_plain

    policy = to_plain(compose("fast-wam-paper").policy)
    policy["world_model"].update(sizes["world_model"])
    policy["action_expert"].update(sizes["action_expert"])
    policy["codec"] = {**dict(codec or WAN_VAE), "layout": layout, "canvas": list(canvas)}
    policy["context"] = {"dim": sizes["text_dim"], "instruction_dim": sizes["text_dim"], "num_tasks": 0,
                         "text_encoder": dict(text_encoder or WAN_UMT5)}
    policy["normalize"] = dict(modes)
    policy["scheduler"].update({"phases": [{"action": int(steps)}], "infer_shift": float(infer_shift),
                                "shift": float(shift)})
    return policy


# -- statistics ------------------------------------------------------------------------------
LEROBOT_MODES = {"MEAN_STD": "mean_std", "MIN_MAX": "min_max", "QUANTILES": "quantile", "IDENTITY": "identity"}


# -- the release -----------------------------------------------------------------------------
def convert_release(files: Mapping[str, Path], *, checkpoint: str, stats_file: str, norm_mode: str,
                    cameras: list[str], camera_size: list[int], layout: str, canvas: list[int], horizon: int = 32,
                    frames: int = 9, frame_stride: int = 4, num_heads: int = 24, steps: int = 10,
                    codec: Mapping[str, Any] | None = None):
    """A :class:`~wamzoo.policy.WAMPolicy` from a ``yuanty/fastwam`` release (see the module docstring).

    Args:
        checkpoint, stats_file: names of the ``.pt`` and the statistics JSON in ``files``.
        norm_mode: the code's ``norm_default_mode`` (``min/max``, ``q01/q99``, ``z-score``).
        cameras, camera_size: camera names and their ``(H, W)`` as given to the policy.
        layout, canvas: how the cameras are composed for the VAE (:func:`wamzoo.codecs.compose_views`).
        horizon, frames, frame_stride: actions per chunk, video frames per sample and the actions
            between two video frames (``num_frames=33``, ``action_video_freq_ratio=4``).
        num_heads: attention heads (not visible in the tensor shapes).
        steps: Euler steps of the action expert (``eval_num_inference_steps``).
        codec: codec config (default: the Wan2.2 VAE from ``Wan-AI/Wan2.2-TI2V-5B-Diffusers``).
    """
    from wamzoo.data.info import DataInfo

    ckpt = need_file(files, checkpoint, RELEASE)
    source = ckpt.name
    state, meta, dropped = read_mot_payload(ckpt)
    sizes = sizes_from_weights(state, "mot.mixtures.video.", "mot.mixtures.action.",
                               "mot.mixtures.{expert}.blocks.{i}.", "proprio_encoder.", num_heads, source)
    check_diffsynth_rope(sizes["world_model"]["head_dim"], source)
    stats, modes = linear_normalizer_stats(read_json(need_file(files, stats_file, RELEASE)), norm_mode, stats_file)
    info = DataInfo(action_dim=sizes["action_dim"], state_dim=sizes["state_dim"], num_views=len(cameras),
                    height=int(camera_size[0]), width=int(camera_size[1]), horizon=int(horizon), n_obs=1,
                    n_future=int(frames) - 1, frame_stride=int(frame_stride), cameras=list(cameras), stats=stats)
    converted = release_map().apply(state, source)
    converted.dropped.update(dropped)
    policy = policy_section(sizes, codec, layout, canvas, modes, steps)
    return build_policy(policy, info, converted, PROVIDED, upstream={
        "format": RELEASE, "files": [checkpoint, stats_file], **meta, "norm_mode": norm_mode,
        "not_applied": {"state_clamp": [-5.0, 5.0]}})


# -- LeRobot ---------------------------------------------------------------------------------
def _processor_stats(files: Mapping[str, Path], config_name: str, registry_name: str,
                     source: str) -> dict[str, dict[str, list[float]]]:
    """Statistics ``{feature: {stat: values}}`` of the (un)normaliser step of a LeRobot processor."""
    cfg = read_json(need_file(files, config_name, LEROBOT))
    steps = [s for s in cfg.get("steps", []) if s.get("registry_name") == registry_name]
    if len(steps) != 1 or "state_file" not in steps[0]:
        raise LoadError(f"{source}: {config_name} has no {registry_name!r} step with statistics"
                        f" (steps: {[s.get('registry_name', s.get('class')) for s in cfg.get('steps', [])]});"
                        " a LeRobot policy without normalisation statistics would act blind")
    name = steps[0]["state_file"]
    path = Path(files[name]) if name in files else Path(files[config_name]).parent / name
    if not path.is_file():
        raise LoadError(f"{source}: {config_name} names the statistics file {name!r}, which is missing")
    out: dict[str, dict[str, list[float]]] = {}
    for flat, tensor in read_safetensors(path).items():
        feature, _, stat = flat.rpartition(".")
        out.setdefault(feature, {})[stat] = tensor.double().flatten().tolist()
    return out


def convert_lerobot(files: Mapping[str, Path], *, codec: Mapping[str, Any] | None = None):
    """A :class:`~wamzoo.policy.WAMPolicy` from a LeRobot ``FastWAMPolicy`` checkpoint folder."""
    from wamzoo.data.info import DataInfo

    cfg_path = need_file(files, "config.json", LEROBOT)
    source = f"LeRobot FastWAM {cfg_path.parent.name}"
    cfg = read_json(cfg_path)
    if cfg.get("type") != "fastwam":
        raise LoadError(f"{cfg_path}: policy type {cfg.get('type')!r}; converter {LEROBOT!r} reads 'fastwam'")
    vcfg, acfg = cfg.get("video_dit_config") or {}, cfg.get("action_dit_config") or {}
    if vcfg.get("video_attention_mask_mode", "first_frame_causal") != "first_frame_causal" \
            or vcfg.get("action_conditioned"):
        raise LoadError(f"{source}: only the first-frame-causal, not action-conditioned Fast-WAM can be represented"
                        f" (mask {vcfg.get('video_attention_mask_mode')!r},"
                        f" action_conditioned={vcfg.get('action_conditioned')})")
    state = read_safetensors(need_file(files, "model.safetensors", LEROBOT))
    layer_fmt = ("model.mot.layers.{i}.blocks.{expert}." if any(k.startswith("model.mot.layers.") for k in state)
                 else "model.mot.mixtures.{expert}.blocks.{i}.")
    heads = int(vcfg.get("num_heads", 24))
    if int(acfg.get("num_heads", heads)) != heads:
        raise LoadError(f"{source}: video and action experts have different head counts")
    sizes = sizes_from_weights(state, "model.mot.mixtures.video.", "model.mot.mixtures.action.", layer_fmt,
                               "model.proprio_encoder.", heads, source)
    for key, want in (("attn_head_dim", sizes["world_model"]["head_dim"]), ("action_dim", sizes["action_dim"])):
        have = vcfg.get(key) if key == "attn_head_dim" else cfg.get(key)
        if have is not None and int(have) != int(want):
            raise LoadError(f"{source}: config {key}={have} but the weights have {want}")
    # features, cameras and statistics
    feats = cfg.get("input_features") or {}
    image_keys = sorted(k for k, f in feats.items() if f.get("type") == "VISUAL")
    if not image_keys:
        raise LoadError(f"{source}: config.json declares no VISUAL input feature")
    height, width = (int(x) for x in cfg.get("image_size", (224, 448)))
    if width % len(image_keys):
        raise LoadError(f"{source}: image width {width} does not split over the cameras {image_keys}")
    norm_map = cfg.get("normalization_mapping") or {}
    if norm_map.get("VISUAL", "IDENTITY") != "IDENTITY":
        raise LoadError(f"{source}: VISUAL normalisation {norm_map['VISUAL']!r} cannot be represented (FastWAM"
                        " feeds [0, 1] pixels to its VAE)")
    pre = _processor_stats(files, "policy_preprocessor.json", "normalizer_processor", source)
    post = _processor_stats(files, "policy_postprocessor.json", "unnormalizer_processor", source)
    stats, modes = {}, {}
    for group, feature, ftype, stat_src in (("action", "action", "ACTION", post), ("state", "observation.state",
                                                                                      "STATE", pre)):
        if group == "state" and not sizes["state_dim"]:
            continue
        mode = norm_map.get(ftype, "IDENTITY")
        if mode not in LEROBOT_MODES:
            raise LoadError(f"{source}: {ftype} normalisation {mode!r} cannot be represented; wamzoo has"
                            f" {', '.join(LEROBOT_MODES)}")
        found = stat_src.get(feature) or pre.get(feature) or {}
        stats[group] = complete_stats(found, LEROBOT_MODES[mode], f"{source} {feature}")
        modes[group] = LEROBOT_MODES[mode]
    ratio = int(cfg.get("action_video_freq_ratio", 4))
    info = DataInfo(action_dim=sizes["action_dim"], state_dim=sizes["state_dim"], num_views=len(image_keys),
                    height=height, width=width // len(image_keys), horizon=int(cfg.get("action_horizon", 32)),
                    n_obs=1, n_future=(int(cfg.get("num_video_frames", 33)) - 1) // ratio, frame_stride=ratio,
                    cameras=[k.removeprefix("observation.images.") for k in image_keys], stats=stats)
    sched = cfg.get("action_scheduler") or {}
    infer_shift = cfg.get("sigma_shift") if cfg.get("sigma_shift") is not None else sched.get("infer_shift", 5.0)
    text = {"tokenizer": cfg.get("tokenizer_model_id", WAN_UMT5["tokenizer"]),
            "encoder": cfg.get("text_encoder_model_id", WAN_UMT5["encoder"]), "subfolder": WAN_UMT5["subfolder"],
            "max_length": int(cfg.get("tokenizer_max_len", WAN_UMT5["max_length"]))}
    policy = policy_section(sizes, codec, "horizontal", [height, width], modes,
                            int(cfg.get("num_inference_steps", 10)), float(infer_shift),
                            float(sched.get("train_shift", 5.0)), text)
    converted: Converted = lerobot_map().apply(state, source)
    return build_policy(policy, info, converted, PROVIDED, upstream={
        "format": LEROBOT, "torch_dtype": cfg.get("torch_dtype"),
        "not_applied": {k: cfg.get(k) for k in ("toggle_action_dimensions", "n_action_steps", "inference_seed",
                                                  "prompt_template", "tokenizer_max_len")}})


# -- folders by layout (``wamzoo.load(folder)``) ---------------------------------------------------
def recognise_lerobot(folder: Path) -> tuple[dict[str, Path], dict[str, Any]] | None:
    """a LeRobot FastWAM folder (``save_pretrained``: config.json of type "fastwam", model.safetensors, processors)"""
    try:
        kind = json.loads((folder / "config.json").read_text()).get("type")
    except (OSError, ValueError, AttributeError):
        return None
    if kind != "fastwam" or not (folder / "model.safetensors").is_file():
        return None
    options = {}
    if (folder / "vae" / "config.json").is_file():  # a VAE saved beside the policy; else the Wan2.2 VAE
        options["codec"] = {**WAN_VAE, "pretrained": str(folder / "vae"), "subfolder": None}
    return {f: folder / f for f in LEROBOT_FILES if (folder / f).exists()}, options
