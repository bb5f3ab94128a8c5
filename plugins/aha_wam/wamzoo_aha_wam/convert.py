"""Converter for the released AHA-WAM checkpoint (HF ``SereneC/AHA-WAM-RoboTwin2.0``).

``aha-wam.release`` reads ``robotwin_ahawam.pt``, written by ``AHAWAMChunkBase.save_checkpoint`` of
the release (readable in the fork Silvernoon/AHA-WAM at its first commit): ``{"mot":
MoT.state_dict(), "proprio_encoder", "action_obs_visual_proj", "chunk_obs_query_encoder", "step",
"torch_dtype"[, "optimizer"]}``, read weights-only (:func:`wamzoo.convert.read_mot_payload`), and
``dataset_stats.json``, the statistics of its ``LinearNormalizer`` (``norm_default_mode: z-score``,
:func:`wamzoo.convert.linear_normalizer_stats`). The files hold no configuration: sizes come from
the tensor shapes, the rest (head count, chunking, history, cameras) from the options of the
registered name, i.e. the release's ``configs/task/robotwin_ahawam_offset.yaml``.

Weight names. The experts are Fast-WAM's (the AHA-WAM code is a fork of it), mapped by
:func:`wamzoo_fast_wam.convert.fast_wam_map` (DiffSynth/Wan2.2 names -> diffusers names); the rest:

=====================================================  ==============================================
upstream                                               wamzoo
=====================================================  ==============================================
``mot.mixtures.video.*``                               ``world_model.dit.*`` (the planner)
``mot.mixtures.action.*``                              ``action_expert.dit.*`` (the executor)
``mot.chunk_kv_cache_editor.layer_query_proj.<l>.*``   ``action_expert.ovcr.route.<l>.*``
``mot.chunk_kv_cache_editor.layer_delta_proj.<l>.*``   ``action_expert.ovcr.delta.<l>.*``
``mot.chunk_kv_cache_editor.delta_gate``               ``action_expert.ovcr.gate``
``action_obs_visual_proj.{0,1,3}``                     ``action_expert.ovcr.visual.{0,1,3}``
``chunk_obs_query_encoder.base_queries`` [1, 1, Q, D]  ``action_expert.ovcr.base_queries`` [Q, D]
``chunk_obs_query_encoder.obs_key_proj.{0,1}``         ``action_expert.ovcr.key_proj.{0,1}``
``chunk_obs_query_encoder.obs_value_proj.{0,1,3}``     ``action_expert.ovcr.value_proj.{0,1,3}``
``chunk_obs_query_encoder.query_proj.{0,1,3}``         ``action_expert.ovcr.query_proj.{0,1,3}``
``proprio_encoder``                                    ``action_expert.proprio`` (chunk-start proprio token)
``mot.action_branch_embedding`` [2, D_action]          row 1 folded into ``action_expert.dit.action_encoder.bias``
=====================================================  ==============================================

``mot.action_branch_embedding``: the code calls it a leftover, but every path of the released model
adds its row 1 to every action token right after ``action_encoder`` (``forward_prior_action_with_
chunk_updated_kv`` in training, ``_predict_action_chunk_with_clean_cache`` and
``_predict_action_flow_with_video_state`` at inference), and the released model trains only that
(prior) branch; a constant added after a linear layer is that layer's bias, so row 1 is added to the
encoder bias, exactly. Row 0 is read by no code path and is dropped (reported). A checkpoint
without the embedding keeps the code's zero initialisation (nothing to fold).

What carries over: the z-score statistics (the code's affine exactly: ``std + 1e-8``), the planner
(per-frame causal, 6 history frames, RoPE frame stride 8, refreshed every 2 chunks of 16 steps), the
executor's prior branch (the released sampler: each chunk reads its OVCR-edited planner context and
itself, no action history), 10 Euler steps on ``phi(linspace(1, 0, 11))`` with shift 5, the
chunk-start proprio token appended to the executor's context only, and the RoboTwin camera layout
(``cam_high`` resized to 256 x 320 above ``cam_left_wrist`` | ``cam_right_wrist`` at 128 x 160 each,
384 x 320) with the Wan2.2 VAE (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``) in per-frame mode: like the release
(``_encode_input_image_latents_tensor`` on each frame; history frames are earlier prefills' keys and
values), every observed frame is encoded on its own, one latent per frame
(:class:`wamzoo.codecs.WanVAECodec` ``per_frame=True``). Another codec can be passed (option ``codec``,
tiny ones in tests) if it also gives one latent per frame.

What cannot be represented (settings are kept in ``policy.config["upstream"]["not_applied"]``):

- The planner's RoPE origin: the release places the current frame at its episode-global index
  (``_observed_frame_index``, + ``32 / 8`` per refresh; the sample's frame in training), wamzoo's
  planner at 0 with the history before it. Attention among frames only sees differences, but OVCR's
  routing and the action tokens read the current frame's rotated keys, so only an episode's first
  refresh matches the release exactly.
- The instruction: umt5-xxl embeddings of the prompt template (128 tokens, padding zeroed, mask all
  ones), passed as ``batch.instruction``; the code's clamp of normalised state to [-5, 5]; the
  generator (the release seeds the whole 80-step noise at each prefill); bf16 inference.
- Refused: a ``head_dim`` whose RoPE split differs between DiffSynth and wamzoo
  (:func:`wamzoo.convert.check_diffsynth_rope`), a camera layout with a codec that cannot compose it,
  and a codec that compresses time (the planner needs one latent per frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from wamzoo.convert import (PROVIDED, StateMap, build_policy, check_diffsynth_rope, linear_normalizer_stats,
                            need_file, read_json, read_mot_payload)
from wamzoo.errors import LoadError
from wamzoo.instructions import WAN_UMT5

from wamzoo_aha_wam.pretrained import RELEASE

BRANCH = "mot.action_branch_embedding"
ENCODER_BIAS = "mot.mixtures.action.action_encoder.bias"


def release_map() -> StateMap:
    """Rules for the flat payload of ``save_checkpoint`` (see module doc)."""
    from wamzoo_fast_wam.convert import fast_wam_map

    m = StateMap("AHA-WAM release")
    editor, ovcr = r"mot\.chunk_kv_cache_editor\.", "action_expert.ovcr."
    m.rename(rf"{editor}layer_query_proj\.(\d+)\.([01])\.(weight|bias)", ovcr + r"route.\1.\2.\3")
    m.rename(rf"{editor}layer_delta_proj\.(\d+)\.([013])\.(weight|bias)", ovcr + r"delta.\1.\2.\3")
    m.rename(rf"{editor}delta_gate", ovcr + "gate")
    m.rename(r"action_obs_visual_proj\.([013])\.(weight|bias)", ovcr + r"visual.\1.\2")
    m.rename(r"chunk_obs_query_encoder\.base_queries", ovcr + "base_queries", lambda t: t.reshape(-1, t.shape[-1]))
    for src, dst, layers in (("obs_key_proj", "key_proj", "01"), ("obs_value_proj", "value_proj", "013"),
                             ("query_proj", "query_proj", "013")):
        m.rename(rf"chunk_obs_query_encoder\.{src}\.([{layers}])\.(weight|bias)", ovcr + dst + r".\1.\2")
    m.rename(r"proprio_encoder\.(weight|bias)", r"action_expert.proprio.\1")
    m.drop(r"mot\.action_branch_embedding", "row 1 (added to every action token by the released model) folded into"
                                            " action_expert.dit.action_encoder.bias; row 0 is read by no code path")
    return m.extend(fast_wam_map("AHA-WAM release", {e: f"mot.mixtures.{e}." for e in ("video", "action")},
                                 {e: [rf"mot\.mixtures\.{e}\.blocks\.(\d+)\."] for e in ("video", "action")},
                                 "proprio_encoder."))


def fold_branch_embedding(state: dict[str, Any], source: str) -> bool:
    """Add row 1 of ``mot.action_branch_embedding`` to the action encoder's bias (in place; see module doc)."""
    emb, bias = state.get(BRANCH), state.get(ENCODER_BIAS)
    if emb is None:
        return False
    if not isinstance(emb, torch.Tensor) or not isinstance(bias, torch.Tensor) or emb.ndim != 2 \
            or emb.shape[0] < 2 or emb.shape[1] != bias.shape[0]:
        raise LoadError(f"{source}: {BRANCH} {tuple(getattr(emb, 'shape', ()))} does not fit {ENCODER_BIAS}"
                        f" {tuple(getattr(bias, 'shape', ()))}; the release's is [2, action width]")
    state[ENCODER_BIAS] = bias.float() + emb[1].float()
    return True


def policy_section(sizes: Mapping[str, Any], num_queries: int, codec: Mapping[str, Any], modes: Mapping[str, str],
                   *, chunk_size: int, num_chunks: int, max_offset: int, history: int, refresh_every: int,
                   video_rope_frame_stride: float, obs_pool: int, steps: int, infer_shift: float = 5.0
                   ) -> dict[str, Any]:
    """The recipe ``policy`` section: the ``aha-wam-paper`` recipe at the checkpoint's sizes."""
    from wamzoo.recipes import compose, to_plain

    policy = to_plain(compose("aha-wam-paper").policy)
    policy["world_model"].update({**sizes["world_model"], "history": int(history),
                                  "video_rope_frame_stride": float(video_rope_frame_stride)})
    policy["action_expert"].update({**sizes["action_expert"], "chunk_size": int(chunk_size),
                                    "num_chunks": int(num_chunks), "max_offset": int(max_offset),
                                    "num_queries": int(num_queries), "obs_pool": int(obs_pool),
                                    "infer_branch": "prior"})
    policy["coupling"].update({"refresh_every": int(refresh_every)})
    policy["codec"] = dict(codec)
    policy["context"] = {"dim": sizes["text_dim"], "instruction_dim": sizes["text_dim"], "state_token": False,
                         "text_encoder": dict(WAN_UMT5)}  # umt5-xxl, 128 tokens, padding zeroed
    policy["normalize"] = dict(modes)
    policy["scheduler"].update({"phases": [{"action": int(steps)}], "infer_shift": float(infer_shift)})
    return policy


def convert_release(files: Mapping[str, Path], *, checkpoint: str, stats_file: str, norm_mode: str,
                    cameras: Sequence[str], camera_size: Sequence[int], layout: str | None = None,
                    canvas: Sequence[int] | None = None, num_heads: int = 24, chunk_size: int = 16,
                    num_chunks: int = 5, max_offset: int = 15, history: int = 6, refresh_every: int = 2,
                    video_rope_frame_stride: float = 8.0, obs_pool: int = 1, steps: int = 10, n_future: int = 3,
                    codec: Mapping[str, Any] | None = None):
    """A :class:`~wamzoo.policy.WAMPolicy` from the AHA-WAM release (see the module docstring).

    Args:
        checkpoint, stats_file: names of the ``.pt`` and the statistics JSON in ``files``.
        norm_mode: the code's ``norm_default_mode`` (``z-score`` in the release).
        cameras, camera_size: camera names and their ``(H, W)`` as given to the policy.
        layout, canvas: how the codec composes the cameras (:func:`wamzoo.codecs.compose_views`).
        num_heads: attention heads (not visible in the tensor shapes; 24).
        chunk_size, num_chunks, max_offset: ``action_chunk_size`` 16, ``action_horizon`` 80 / 16, offsets.
        history, refresh_every, video_rope_frame_stride: ``num_history_frames`` 6, the deploy policy's
            ``chunks_per_video_prefill`` 2, ``video_rope_frame_stride`` 8.
        obs_pool: ``action_obs_downsample_factor`` (1).
        steps: Euler steps per chunk (``num_inference_steps`` 10).
        n_future: future planner frames of a training window (used by training only).
        codec: codec config (default: the Wan2.2 VAE, ``per_frame: true``); it must give one latent per frame.
    """
    from wamzoo.data.info import DataInfo
    from wamzoo_fast_wam.convert import WAN_VAE, sizes_from_weights

    ckpt = need_file(files, checkpoint, RELEASE)
    source = ckpt.name
    codec = dict(codec or {**WAN_VAE, "per_frame": True})
    if layout is not None:
        if codec.get("name") != "wan-vae":
            raise LoadError(f"{source}: the release composes its cameras {list(cameras)} as {layout!r}, which the"
                            f" codec {codec.get('name')!r} cannot do; pass layout=None with one camera")
        codec.update({"layout": layout, "canvas": list(canvas or ())})
    state, meta, dropped = read_mot_payload(ckpt)
    folded = fold_branch_embedding(state, source)
    sizes = sizes_from_weights(state, "mot.mixtures.video.", "mot.mixtures.action.",
                               "mot.mixtures.{expert}.blocks.{i}.", "proprio_encoder.", num_heads, source)
    check_diffsynth_rope(sizes["world_model"]["head_dim"], source)
    queries = state.get("chunk_obs_query_encoder.base_queries")
    if not isinstance(queries, torch.Tensor):
        raise LoadError(f"{source}: no chunk_obs_query_encoder.base_queries; this is not an AHA-WAM checkpoint"
                        " (OVCR's queries are missing)")
    stats, modes = linear_normalizer_stats(read_json(need_file(files, stats_file, RELEASE)), norm_mode, stats_file)
    info = DataInfo(action_dim=sizes["action_dim"], state_dim=sizes["state_dim"], num_views=len(cameras),
                    height=int(camera_size[0]), width=int(camera_size[1]),
                    horizon=int(num_chunks) * int(chunk_size) + int(max_offset), n_obs=int(history) + 1,
                    n_future=int(n_future), frame_stride=int(refresh_every) * int(chunk_size), cameras=list(cameras),
                    stats=stats)
    policy = policy_section(sizes, int(queries.shape[-2]), codec, modes, chunk_size=chunk_size, num_chunks=num_chunks,
                            max_offset=max_offset, history=history, refresh_every=refresh_every,
                            video_rope_frame_stride=video_rope_frame_stride, obs_pool=obs_pool, steps=steps)
    converted = release_map().apply(state, source)
    converted.dropped.update(dropped)
    model = build_policy(policy, info, converted, PROVIDED, upstream={
        "format": RELEASE, "files": [checkpoint, stats_file], **meta, "norm_mode": norm_mode,
        "folded": {"action_branch_embedding": "row 1 added to action_expert.dit.action_encoder.bias" if folded
                   else "absent (zero, as the code initialises it)"},
        "not_applied": {"planner_rope_origin": "episode-global frame index in the release, 0 here",
                        "state_clamp": [-5.0, 5.0], "prompt_template": "umt5-xxl, 128 tokens, padding zeroed"}})
    if model.codec.temporal_factor != 1:
        raise LoadError(f"{source}: the codec {codec.get('name')!r} compresses time {model.codec.temporal_factor}x,"
                        " but the release encodes every frame on its own (one latent per frame); pass a per-frame"
                        " codec, e.g. codec={'name': 'wan-vae', ..., 'per_frame': True}")
    return model
