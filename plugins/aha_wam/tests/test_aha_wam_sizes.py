"""The paper's size builds on the meta device with the released model's parameter count, and the
small Meta-World recipes keep the paper's proportions."""

import torch

from wamzoo.conditioning import ContextEncoder
from wamzoo.plugins import get_plugins
from wamzoo.recipes import compose

WAN22_VAE_CHANNELS = 48
ROBOTWIN = {"action_dim": 14, "state_dim": 14}  # the release's robotwin processor: 14-d actions and proprio


def _reference_count() -> dict[str, int]:
    """AHA-WAM's parameters from the release's configs, counted from its module definitions
    (``configs/model/ahawam.yaml``, ``configs/task/robotwin_ahawam_offset.yaml``; ``action_dit.py``,
    ``ahawam_chunk_base.py``, ``mot.py``), independently of this plugin.

    Video expert: diffusers' ``WanTransformer3DModel`` with the Wan2.2-TI2V-5B config (the release's
    ``video_dit_config``). ActionDiT (hidden 1024, ffn 4096, 30 layers, 24 x 128, text 4096, freq 256)
    with its ``ActionHead`` (LayerNorm, Linear, 2 x 1024 modulation). ``proprio_encoder``:
    Linear(14, 4096). OVCR: ``action_obs_visual_proj`` (LayerNorm(48), Linear(48, 4096), Linear(4096,
    4096)), ``MultiQueryChunkObsEncoder`` (32 x 4096 queries; key LayerNorm + Linear; value and query
    LayerNorm, Linear, Linear) and ``LayerwiseChunkKVCacheEditor`` (per layer LayerNorm(4096) +
    Linear(4096, 3072); LayerNorm(3072), Linear(3072, 3072), Linear(3072, 6144); 30 gates). The
    release's ``mot.action_branch_embedding`` (2 x 1024) is left out: its code calls it a leftover.
    """
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        wan = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
                                    in_channels=48, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336,
                                    num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6)
    video = sum(p.numel() for p in wan.parameters())
    d, ffn, inner, text, freq, layers, a, s = 1024, 4096, 24 * 128, 4096, 256, 30, 14, 14
    linear = lambda i, o: i * o + o  # noqa: E731
    norm = lambda n: 2 * n  # noqa: E731  (LayerNorm with affine)
    attention = 3 * linear(d, inner) + linear(inner, d) + 2 * inner
    block = 2 * attention + 2 * d + linear(d, ffn) + linear(ffn, d) + 6 * d
    action = (linear(a, d) + linear(text, d) + linear(d, d) + linear(freq, d) + linear(d, d) + linear(d, 6 * d)
              + layers * block + linear(d, a) + 2 * d)
    proprio = linear(s, text)
    visual = norm(WAN22_VAE_CHANNELS) + linear(WAN22_VAE_CHANNELS, text) + linear(text, text)
    queries = 32 * text + norm(text) + linear(text, text) + 2 * (norm(text) + 2 * linear(text, text))
    editor = layers * (norm(text) + linear(text, inner) + norm(inner) + linear(inner, inner)
                       + linear(inner, 2 * inner)) + layers
    return {"video": video, "action": action, "proprio": proprio, "ovcr": visual + queries + editor}


def test_paper_size_on_meta_device_matches_the_released_model():
    recipe = compose("aha-wam-paper")
    policy = recipe.policy
    reg = get_plugins().registry
    facts = {"latent_channels": WAN22_VAE_CHANNELS, "context_dim": policy["context"]["dim"], "n_future": 1,
             "num_views": 1, "horizon": 95, "frame_stride": 32, **ROBOTWIN}
    parts = {}
    with torch.device("meta"):
        for part in ("world_model", "action_expert", "coupling"):
            cfg = dict(policy[part])
            entry = reg.get(part, cfg.pop("name"))
            cfg.update({k: v for k, v in facts.items() if k in entry.parameters() and k not in cfg})
            parts[part] = reg.create(part, entry.name, **cfg)
        context = ContextEncoder(dim=policy["context"]["dim"], instruction_dim=policy["context"]["instruction_dim"],
                                 state_dim=ROBOTWIN["state_dim"], state_token=False)
    count = sum(p.numel() for m in (*parts.values(), context) for p in m.parameters())
    ref = _reference_count()
    reference = sum(ref.values())
    # the one difference: the release's ActionHead has a 2 x 1024 AdaLN table, the core ActionDiT's head none
    assert reference - count == 2 * 1024, (count, ref)
    ovcr = sum(p.numel() for p in parts["action_expert"].ovcr.parameters())
    assert ovcr == ref["ovcr"], (ovcr, ref["ovcr"])  # the mechanism itself, exactly
    assert 7.2e9 < reference < 7.4e9
    planner, executor = parts["world_model"].dit, parts["action_expert"]
    assert (planner.dim, len(planner.blocks), planner.num_heads, planner.head_dim) == (3072, 30, 24, 128)
    assert (executor.dit.dim, len(executor.dit.blocks)) == (1024, 30)
    assert (executor.chunk_size, executor.num_chunks, executor.max_offset, executor.window) == (16, 5, 15, 80)
    assert len(executor.ovcr.base_queries) == 32 and all(p.is_meta for p in executor.parameters())


def test_small_recipes_keep_the_papers_proportions():
    fast, aha = compose("fast-wam"), compose("aha-wam")  # both compose the core's shared small size and data
    ex, data = aha.policy["action_expert"], aha.data
    assert 2 * ex["chunk_size"] == fast.data["horizon"]  # paper: a 16-action chunk vs Fast-WAM's 32 actions
    assert ex["max_offset"] == ex["chunk_size"] - 1  # paper: 15 with 16-action chunks
    assert data["horizon"] == ex["num_chunks"] * ex["chunk_size"] + ex["max_offset"]
    assert data["frame_stride"] == aha.policy["coupling"]["refresh_every"] * ex["chunk_size"]
    assert data["n_obs"] == aha.policy["world_model"]["history"] + 1 and data["step_obs"]
    assert aha.eval.replan == ex["chunk_size"]
    assert compose("aha-wam-no-ovcr").policy["action_expert"]["ovcr"] is False
    assert compose("aha-wam-no-offset").policy["action_expert"]["max_offset"] == 0
