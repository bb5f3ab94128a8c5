"""The paper's size builds on the meta device with the released model's parameter count."""

import torch

from wamzoo.conditioning import ContextEncoder
from wamzoo.plugins import get_plugins
from wamzoo.recipes import compose

WAN22_VAE_CHANNELS = 48  # z_dim of the Wan2.2 VAE (AutoencoderKLWan of Wan2.2-TI2V-5B)
LIBERO = {"action_dim": 7, "state_dim": 8}  # the code's LIBERO processor: 7-d actions, 8-d proprio


def _reference_count() -> int:
    """Fast-WAM's parameters from the public configs, counted independently of this plugin.

    Video expert: diffusers' ``WanTransformer3DModel`` with the Wan2.2-TI2V-5B config (= the code's
    ``video_dit_config``). ActionDiT: the code's ``action_dit_config`` (hidden 1024, ffn 4096,
    30 layers, 24 x 128 heads, text 4096, freq 256) counted from the modules of ``action_dit.py``.
    Proprio encoder: ``Linear(proprio_dim, text_dim)``.
    """
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        wan = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
                                    in_channels=48, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336,
                                    num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6)
    video = sum(p.numel() for p in wan.parameters())
    d, ffn, inner, text, freq, layers, a = 1024, 4096, 24 * 128, 4096, 256, 30, LIBERO["action_dim"]
    linear = lambda i, o: i * o + o  # noqa: E731
    attention = 3 * linear(d, inner) + linear(inner, d) + 2 * inner  # q, k, v, o + RMSNorm(q), RMSNorm(k)
    block = 2 * attention + 2 * d + linear(d, ffn) + linear(ffn, d) + 6 * d  # self, cross, norm3, ffn, modulation
    action = (linear(a, d) + linear(text, d) + linear(d, d) + linear(freq, d) + linear(d, d) + linear(d, 6 * d)
              + layers * block + linear(d, a))
    proprio = linear(LIBERO["state_dim"], text)
    return video + action + proprio


def test_paper_size_on_meta_device_matches_the_released_model():
    recipe = compose("fast-wam-paper")
    policy = recipe.policy
    reg = get_plugins().registry
    facts = {"latent_channels": WAN22_VAE_CHANNELS, "context_dim": policy["context"]["dim"], "n_future": 2,
             "num_views": 2, "horizon": 32, **LIBERO}
    parts = {}
    with torch.device("meta"):
        for part in ("world_model", "action_expert"):
            cfg = dict(policy[part])
            entry = reg.get(part, cfg.pop("name"))
            cfg.update({k: v for k, v in facts.items() if k in entry.parameters() and k not in cfg})
            parts[part] = reg.create(part, entry.name, **cfg)
        context = ContextEncoder(dim=policy["context"]["dim"], instruction_dim=policy["context"]["instruction_dim"],
                                 state_dim=LIBERO["state_dim"])
    count = sum(p.numel() for m in (*parts.values(), context) for p in m.parameters())
    reference = _reference_count()
    assert abs(count - reference) / reference < 0.05, (count, reference)
    assert 5.9e9 < reference < 6.1e9  # "~6B parameters"
    video = parts["world_model"].dit
    action = parts["action_expert"].dit
    assert (video.dim, len(video.blocks), video.num_heads, video.head_dim) == (3072, 30, 24, 128)
    assert (action.dim, len(action.blocks), action.num_heads, action.head_dim) == (1024, 30, 24, 128)
    assert all(p.is_meta for p in parts["world_model"].parameters())
