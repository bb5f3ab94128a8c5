"""The paper's size builds on the meta device with the parameter count of the public model."""

import torch

from wamzoo.conditioning import ContextEncoder
from wamzoo.plugins import get_plugins
from wamzoo.recipes import compose

PAPER = {"latent_channels": 48, "num_views": 3, "action_dim": 14, "state_dim": 16, "horizon": 32, "n_obs": 1,
         "n_future": 2, "future_frames": 8, "frame_stride": 4, "context_dim": 4096}
#: XWAMModel(model_type="ti2v", num_modalities=2, num_views=3, in_dim=out_dim=48, dim=3072, ffn_dim=14336,
#: num_heads=24, num_layers=30, num_extra_layers=10, text_dim=4096, freq_dim=256, action_dim=14,
#: proprio_dim=16) of the public code, counted on the meta device (configs/model/wan22_5b_sft.yaml plus
#: the Wan2.2-TI2V-5B config); equal to the independent count of ``_reference_count`` below.
PUBLIC_CODE_COUNT = 6_674_911_646


def _reference_count() -> int:
    """X-WAM's parameters counted independently of this plugin.

    Backbone: diffusers' ``WanTransformer3DModel`` with the Wan2.2-TI2V-5B config (4,999,787,712
    parameters, the "5B"). Additions of X-WAM (``XWAMModel``): a 3-view embedding; M = 10 copies of a
    Wan block (diffusers' block module) and one more output head (``proj_out`` + 2-row modulation)
    for depth; action (14) and proprio (16) encoders ``Linear(n, d), GELU, Linear(d, d)`` and
    decoders ``Linear(d, d), GELU, Linear(d, n)``.
    """
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        wan = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
                                    in_channels=48, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336,
                                    num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    d = 3072
    linear = lambda i, o: i * o + o  # noqa: E731
    mlp = lambda n: linear(n, d) + linear(d, d) + linear(d, d) + linear(d, n)  # noqa: E731
    depth = 10 * count(wan.blocks[0]) + count(wan.proj_out) + wan.scale_shift_table.numel()
    return count(wan) + 3 * d + depth + mlp(14) + mlp(16)


def test_paper_size_on_meta_device_matches_the_public_model():
    policy = compose("x-wam-paper").policy
    reg = get_plugins().registry
    parts = {}
    with torch.device("meta"):
        for part in ("world_model", "action_expert"):
            cfg = dict(policy[part])
            entry = reg.get(part, cfg.pop("name"))
            cfg.update({k: v for k, v in PAPER.items() if k in entry.parameters() and k not in cfg})
            parts[part] = reg.create(part, entry.name, **cfg)
        context = ContextEncoder(dim=policy["context"]["dim"], num_tasks=0, state_token=False)
    count = sum(p.numel() for m in (*parts.values(), context) for p in m.parameters())
    reference = _reference_count()
    assert reference == PUBLIC_CODE_COUNT
    assert count == reference, (count, reference)
    wm = parts["world_model"]
    assert (wm.dit.dim, len(wm.dit.blocks), wm.dit.num_heads, wm.dit.head_dim) == (3072, 30, 24, 128)
    assert wm.depth.num_layers == 10 and all(p.is_meta for p in wm.parameters())
    actions, states = parts["action_expert"].positions()
    assert float(actions[16]) == 1.0 and float(states[4]) == 1.0  # 16 actions and 4 frames per latent frame
