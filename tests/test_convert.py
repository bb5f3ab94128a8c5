"""Converter machinery (wamzoo.convert): ordered rules, tensor transforms, strict accounting, building
a policy from an upstream layout; camera layouts of the codec."""

import math

import pytest
import torch
from torch import nn

from wamzoo.codecs import WanVAECodec, compose_views
from wamzoo.convert import (StateMap, build_policy, check_diffsynth_rope, complete_stats, load_converted,
                            summarize)
from wamzoo.errors import LoadError
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose, to_plain
from wamzoo.training import make_datamodule


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.ModuleDict({"q": nn.Linear(4, 4), "k": nn.Linear(4, 4),
                                                    "v": nn.Linear(4, 4)}) for _ in range(2)])
        self.table = nn.Parameter(torch.zeros(1, 6, 4))
        self.codec = nn.Linear(2, 2)  # stands for parts filled by construction (provided)


def upstream_net(seed=0):
    """The same weights in another layout: fused qkv per layer, a flat modulation, other names."""
    g = torch.Generator().manual_seed(seed)
    up = {}
    for i in range(2):
        up[f"layers.{i}.qkv.weight"] = torch.randn(12, 4, generator=g)
        up[f"layers.{i}.qkv.bias"] = torch.randn(12, generator=g)
    up["mod"] = torch.randn(24, generator=g)
    return up


def net_map():
    m = StateMap("test net")
    m.split(r"layers\.(\d+)\.qkv\.(weight|bias)", [r"blocks.\1.q.\2", r"blocks.\1.k.\2", r"blocks.\1.v.\2"])
    m.reshape(r"mod", "table", (1, 6, 4))
    m.drop(r"optim\..*", "optimizer state")
    return m


def test_rules_transforms_and_loading():
    up = {**upstream_net(), "optim.step": torch.tensor(3)}
    net = Net()
    codec_before = net.codec.weight.detach().clone()
    conv = net_map().apply(up)
    assert conv.origin["blocks.1.k.bias"] == "layers.1.qkv.bias" and conv.dropped == {"optim.step": "optimizer state"}
    load_converted(net, conv, provided=("codec.",))
    assert torch.equal(net.blocks[1].k.weight, up["layers.1.qkv.weight"][4:8])
    assert torch.equal(net.blocks[0].v.bias, up["layers.0.qkv.bias"][8:])
    assert torch.equal(net.table.flatten(), up["mod"])
    assert torch.equal(net.codec.weight, codec_before)  # provided: kept, not required from the checkpoint


def test_first_matching_rule_wins_and_templates_expand():
    m = StateMap().rename(r"a\.special", "x.one").rename(r"a\.(\w+)", r"x.\1_generic").prefix("b.", "y.")
    conv = m.apply({"a.special": torch.ones(1), "a.other": torch.ones(1), "b.c.d": torch.ones(1), "zzz": torch.ones(1)})
    assert set(conv.state) == {"x.one", "x.other_generic", "y.c.d"} and conv.unused == ["zzz"]


def test_split_with_sizes_and_bad_transforms():
    m = StateMap().split(r"w", ["a", "b"], dim=1, sizes=[1, 3]).split(r"odd", ["c", "d"])
    conv = m.apply({"w": torch.arange(8.0).reshape(2, 4), "odd": torch.ones(3)})
    assert conv.state["b"].shape == (2, 3) and torch.equal(conv.state["a"], torch.tensor([[0.0], [4.0]]))
    assert conv.failed and "odd" in conv.failed[0] and "equal parts" in conv.failed[0]
    with pytest.raises(ValueError, match="needs a reason"):
        StateMap().drop("x", "")


def test_one_error_lists_every_problem_and_loads_nothing():
    up = upstream_net()
    up["layers.0.lora.weight"] = torch.zeros(2)           # leftover upstream key
    del up["layers.1.qkv.bias"]                            # -> three unfilled parameters
    up["mod"] = torch.zeros(30)                            # reshape fails
    m = net_map().rename(r"extra", "blocks.0.q.nonexistent")
    up["extra"] = torch.zeros(1)                          # a name the model does not have
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(LoadError) as err:
        load_converted(net, m.apply(up), provided=("codec.",))
    msg = str(err.value)
    assert "1 upstream keys not consumed by any rule: layers.0.lora.weight" in msg
    assert "4 wamzoo parameters not filled: blocks.1.k.bias, blocks.1.q.bias, blocks.1.v.bias, table" in msg
    assert "mapped to names the model does not have: blocks.0.q.nonexistent" in msg
    assert "transforms failed: mod:" in msg
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    up = upstream_net()
    up["layers.0.qkv.weight"] = torch.zeros(12, 5)
    with pytest.raises(LoadError, match=r"blocks.0.q.weight \(from layers.0.qkv.weight\): checkpoint \(4, 5\)"):
        load_converted(Net(), net_map().apply(up), provided=("codec.",))
    with pytest.raises(LoadError, match="onto the same name: layers.0.qkv.weight and dup -> blocks.0.q.weight"):
        load_converted(Net(), net_map().rename("dup", "blocks.0.q.weight").apply({**upstream_net(),
                                                                                  "dup": torch.zeros(4, 4)}),
                       provided=("codec.",))


def test_wan_block_and_embedding_rules():
    """Wan2.2 / DiffSynth names -> diffusers names: the cross-attention norm is norm3 there, norm2 here."""
    m = StateMap().wan_blocks(r"blk\.(\d+)\.", "dit.blocks.").wan_embeddings("net.", "dit.")
    up = {"blk.3.norm3.weight": 1, "blk.3.modulation": 2, "blk.3.self_attn.o.bias": 3, "blk.3.ffn.0.weight": 4,
          "blk.3.cross_attn.norm_k.weight": 5, "net.time_projection.1.weight": 6, "net.text_embedding.2.bias": 7,
          "blk.3.norm2.weight": 8}  # the upstream FFN norm has no weights: an unknown key here
    conv = m.apply({k: torch.tensor(float(v)) for k, v in up.items()})
    assert {k: int(v) for k, v in conv.state.items()} == {
        "dit.blocks.3.norm2.weight": 1, "dit.blocks.3.scale_shift_table": 2, "dit.blocks.3.attn1.to_out.0.bias": 3,
        "dit.blocks.3.ffn.net.0.proj.weight": 4, "dit.blocks.3.attn2.norm_k.weight": 5,
        "dit.condition_embedder.time_proj.weight": 6, "dit.condition_embedder.text_embedder.linear_2.bias": 7}
    assert conv.unused == ["blk.3.norm2.weight"]
    check_diffsynth_rope(128, "x")
    with pytest.raises(LoadError, match="head_dim 16 splits RoPE channels differently"):
        check_diffsynth_rope(16, "x")


def test_summarize_names_every_key_compactly():
    keys = [f"mixtures.video.blocks.{i}.ffn.0.weight" for i in range(30)] + ["head.w"] + \
        [f"blocks.{i}.x" for i in (0, 1, 2, 5)]
    text = summarize(keys)
    assert text == "mixtures.video.blocks.{0-29}.ffn.0.weight, head.w, blocks.{0-2,5}.x"
    assert summarize(["a", "b"]) == "a, b"


def test_complete_stats():
    s = complete_stats({"mean": [0.0, 1.0], "std": [1.0, 2.0], "count": [5]}, "mean_std")
    assert s["mean"] == [0.0, 1.0] and all(math.isnan(v) for v in s["q99"])
    with pytest.raises(LoadError, match="needs q01, q99 but the release lacks q99"):
        complete_stats({"q01": [0.0]}, "quantile", "x")
    with pytest.raises(LoadError, match="different lengths"):
        complete_stats({"min": [0.0], "max": [1.0, 2.0]}, "min_max")
    with pytest.raises(LoadError, match="unknown normalisation mode"):
        complete_stats({}, "z-score")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    recipe = compose("tiny-mot")
    dm = make_datamodule(recipe)
    info = dm.info()
    policy = WAMPolicy.from_config(recipe.policy, info).eval()
    return recipe, info, policy, next(iter(dm.train_dataloader())).observation()


def _as_upstream(policy):
    """The policy's weights under made-up upstream names: ``net.<expert>.…``, q/k/v fused."""
    up = {}
    for k, v in policy.state_dict().items():
        if k.startswith(("normalizer.", "codec.")):
            continue
        if ".attn1.to_q." in k:
            tail = k.split(".")[-1]
            kv = [policy.state_dict()[k.replace("to_q", n)] for n in ("to_q", "to_k", "to_v")]
            up["net." + k.replace("attn1.to_q." + tail, "qkv." + tail)] = torch.cat(kv)
        elif ".attn1.to_k." in k or ".attn1.to_v." in k:
            continue
        else:
            up["net." + k] = v.clone()
    return up


def test_build_policy_from_an_upstream_layout(tiny):
    recipe, info, policy, obs = tiny
    m = StateMap("made-up release")
    m.split(r"net\.(.*)\.qkv\.(weight|bias)", [r"\1.attn1.to_q.\2", r"\1.attn1.to_k.\2", r"\1.attn1.to_v.\2"])
    m.prefix("net.", "")
    converted = m.apply(_as_upstream(policy))
    rebuilt = build_policy(to_plain(recipe.policy), info, converted, upstream={"format": "test"})
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(rebuilt.predict_action(obs, generator=g()), policy.predict_action(obs, generator=g()))
    assert rebuilt.config["upstream"]["format"] == "test" and rebuilt.config["recipe"]["data"]["horizon"] == 8
    info_blind = type(info).from_dict({**info.to_dict(), "stats": None})
    with pytest.raises(LoadError, match="act blind"):
        build_policy(to_plain(recipe.policy), info_blind, converted)


def test_compose_views_layouts():
    B, T = 2, 1
    frames = torch.rand(B, T, 3, 3, 8, 12)
    side = compose_views(frames[:, :, :2], "horizontal")
    assert side.shape == (B, T, 1, 3, 8, 24)
    assert torch.equal(side[:, :, 0, :, :, :12], frames[:, :, 0]) and torch.equal(side[:, :, 0, :, :, 12:],
                                                                                  frames[:, :, 1])
    resized = compose_views(frames[:, :, :2], "horizontal", (4, 12))
    assert resized.shape == (B, T, 1, 3, 4, 12)
    mosaic = compose_views(frames, "robotwin", (12, 16))
    assert mosaic.shape == (B, T, 1, 3, 12, 16)
    top = torch.nn.functional.interpolate(frames[:, 0, 0], size=(8, 16), mode="bilinear", align_corners=False,
                                          antialias=True)
    assert torch.allclose(mosaic[:, 0, 0, :, :8], top)
    left = torch.nn.functional.interpolate(frames[:, 0, 1], size=(4, 8), mode="bilinear", align_corners=False,
                                           antialias=True)
    assert torch.allclose(mosaic[:, 0, 0, :, 8:, :8], left)
    with pytest.raises(ValueError, match="3 views and a canvas"):
        compose_views(frames[:, :, :2], "robotwin", (12, 16))
    with pytest.raises(ValueError, match="unknown camera layout"):
        compose_views(frames, "grid")


def test_vae_codec_encodes_the_composed_canvas():
    cfg = {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [True],
           "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4}
    torch.manual_seed(0)
    plain = WanVAECodec(config=cfg)
    side = WanVAECodec(config=cfg, layout="horizontal")
    side.load_state_dict(plain.state_dict())
    frames = torch.rand(1, 1, 2, 3, 8, 8)
    z = side.encode(frames)
    assert z.shape == (1, 1, 1, 4, 4, 8)
    assert torch.allclose(z, plain.encode(torch.cat([frames[:, :, :1], frames[:, :, 1:]], dim=-1)), atol=1e-6)
    assert not torch.allclose(z, torch.cat([plain.encode(frames[:, :, :1]), plain.encode(frames[:, :, 1:])], -1),
                              atol=1e-4)  # a convolutional VAE with attention sees across the seam


def test_vae_codec_per_frame_encodes_each_frame_alone():
    """``per_frame``: one latent per frame, each frame its own 1-frame clip (AHA-WAM's planner frames)."""
    cfg = {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [True],
           "latents_mean": [0.1] * 4, "latents_std": [2.0] * 4}
    torch.manual_seed(0)
    clip = WanVAECodec(config=cfg)
    each = WanVAECodec(config=cfg, per_frame=True)
    each.load_state_dict(clip.state_dict())
    assert (clip.temporal_factor, each.temporal_factor, each.latent_frames(5)) == (2, 1, 5)
    frames = torch.rand(2, 5, 2, 3, 8, 8)
    z = each.encode(frames)
    assert z.shape == (2, 5, 2, 4, 4, 4) and clip.encode(frames).shape == (2, 3, 2, 4, 4, 4)
    alone = torch.stack([torch.cat([clip.encode(frames[b:b + 1, t:t + 1, v:v + 1]) for v in range(2)], 2)
                         for b in range(2) for t in range(5)]).reshape(2, 5, 2, 4, 4, 4)
    assert torch.allclose(z, alone, atol=1e-5)
    assert each.decode(z).shape == frames.shape
    assert torch.allclose(each.decode(z[:, 3:4]), clip.decode(z[:, 3:4]), atol=1e-5)
    mosaic = WanVAECodec(config=cfg, layout="robotwin", canvas=(12, 8), per_frame=True)
    mosaic.load_state_dict(clip.state_dict())
    cams = torch.rand(1, 3, 3, 3, 8, 8)
    z = mosaic.encode(cams)
    assert z.shape == (1, 3, 1, 4, 6, 4)
    assert torch.allclose(z[:, 1:2], clip.encode(compose_views(cams[:, 1:2], "robotwin", (12, 8))), atol=1e-5)
    assert mosaic.decode(z).shape == (1, 3, 1, 3, 12, 8)
