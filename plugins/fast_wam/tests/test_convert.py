"""Converters of the released Fast-WAM checkpoints (``yuanty/fastwam`` .pt + stats, LeRobot FastWAM).

Small checkpoints are written here with the upstream key names, layouts and file formats (read off
the public code: ``FastWAM.save_checkpoint``, ``wan_video_dit.py``, ``action_dit.py``, ``mot.py``,
``normalizer.py``; LeRobot's ``modeling_fastwam.py``, ``wan/*.py``, processors), put in a temporary
Hugging Face cache and loaded by name with the Hub offline. The converted policy is compared with
an independent re-implementation of the upstream inference written below from the upstream
formulas (DiffSynth block, MoT prefill + cached action denoising, Euler on the shifted grid, the
code's LinearNormalizer, cameras concatenated in pixel space before the VAE).
"""

import json
import math
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import wamzoo
from wamzoo.batch import Batch
from wamzoo.errors import LoadError
from wamzoo.testing import hub_cache, upstream_wan_block

VAE = {"name": "wan-vae", "config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1,
                                     "temperal_downsample": [True], "latents_mean": [0.1, -0.2, 0.3, 0.0],
                                     "latents_std": [0.5, 2.0, 1.0, 1.5]}}
# tiny sizes; head_dim 12 splits RoPE channels (4, 4, 4) in the code and in wamzoo alike
SIZES = dict(c=4, d=24, ffn=32, heads=2, hd=12, layers=2, text=16, freq=256, da=12, ffn_a=20, a=3, s=4)
TINY = {"codec": VAE, "num_heads": 2, "horizon": 8}
LIBERO = "fast-wam/libero-2cam224"
TINY_LIBERO = {"canvas": [16, 32], "camera_size": [16, 16]}  # two 16 x 16 cameras instead of 224 x 224
CKPT, STATS = "libero_uncond_2cam224.pt", "libero_uncond_2cam224_dataset_stats.json"


# -- upstream checkpoints, as the code writes them --------------------------------------------
def _common(g, dim, z):
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    return {"text_embedding.0.weight": r(dim, z["text"]), "text_embedding.0.bias": r(dim),
            "text_embedding.2.weight": r(dim, dim), "text_embedding.2.bias": r(dim),
            "time_embedding.0.weight": r(dim, z["freq"]), "time_embedding.0.bias": r(dim),
            "time_embedding.2.weight": r(dim, dim), "time_embedding.2.bias": r(dim),
            "time_projection.1.weight": r(6 * dim, dim), "time_projection.1.bias": r(6 * dim)}


def upstream_mot(seed=0, z=SIZES):
    """``MoT.state_dict()`` of the code: ``mixtures.video.*`` (WanVideoDiT) and ``mixtures.action.*`` (ActionDiT)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    attn = z["heads"] * z["hd"]
    video = {"patch_embedding.weight": r(z["d"], z["c"], 1, 2, 2), "patch_embedding.bias": r(z["d"]),
             **_common(g, z["d"], z), "head.head.weight": r(z["c"] * 4, z["d"]), "head.head.bias": r(z["c"] * 4),
             "head.modulation": r(1, 2, z["d"])}
    action = {"action_encoder.weight": r(z["da"], z["a"]), "action_encoder.bias": r(z["da"]), **_common(g, z["da"], z),
              "head.weight": r(z["a"], z["da"]), "head.bias": r(z["a"])}
    for i in range(z["layers"]):
        video.update({f"blocks.{i}.{k}": v for k, v in upstream_wan_block(r, z["d"], z["ffn"], attn).items()})
        action.update({f"blocks.{i}.{k}": v for k, v in upstream_wan_block(r, z["da"], z["ffn_a"], attn).items()})
    mot = {f"mixtures.video.{k}": v for k, v in video.items()}
    mot.update({f"mixtures.action.{k}": v for k, v in action.items()})
    proprio = {"weight": r(z["text"], z["s"]), "bias": r(z["text"])}
    return mot, proprio


def release_payload(seed=0, dtype=torch.bfloat16, z=SIZES):
    """What ``FastWAM.save_checkpoint`` writes (bf16 weights, as trained)."""
    mot, proprio = upstream_mot(seed, z)
    return {"mot": {k: v.to(dtype) for k, v in mot.items()}, "step": 20000, "torch_dtype": "torch.bfloat16",
            "proprio_encoder": {k: v.to(dtype) for k, v in proprio.items()}}


def upstream_stats(a=SIZES["a"], s=SIZES["s"], seed=1):
    """The code's ``dataset_stats.json`` (``get_dataset_stats`` + ``save_dataset_stats_to_json``); the
    last action and first state dimension are constant (range 0), as a gripper channel can be."""
    g = torch.Generator().manual_seed(seed)

    def entry(n, flat):
        lo = torch.randn(n, generator=g) - 2
        hi = lo + torch.rand(n, generator=g) * 3 + 0.5
        hi[flat] = lo[flat]
        mean, std = (lo + hi) / 2, (hi - lo) / 4 + 0.05
        q01, q99 = lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo)
        out = {f"global_{k}": v.tolist() for k, v in
               dict(min=lo, max=hi, mean=mean, std=std, q01=q01, q99=q99).items()}
        out.update({k.replace("global_", "stepwise_"): [v] * 4 for k, v in out.items()})  # [T, D]; unused here
        return out

    return {"state": {"default": entry(s, 0)}, "action": {"default": entry(a, a - 1)}, "num_episodes": 12,
            "num_transition": 3456}


def upstream_normalizer(stats, mode):
    """The code's ``SingleFieldLinearNormalizer`` (forward clamps to [-5, 5]; backward inverts)."""
    st = {k[len("global_"):]: torch.tensor(v, dtype=torch.float32) for k, v in stats.items() if k.startswith("global_")}
    if mode == "z-score":
        scale = 1.0 / (st["std"] + 1e-8)
        offset = -st["mean"] / (st["std"] + 1e-8)
    else:
        lo, hi = (st["min"], st["max"]) if mode == "min/max" else (st["q01"], st["q99"])
        rng = hi - lo
        flat = rng < 1e-4
        rng[flat] = 2.0
        scale = 2.0 / rng
        offset = -1.0 - scale * lo
        offset[flat] = 0.0 - lo[flat]
    return (lambda x: torch.clamp(x * scale + offset, -5.0, 5.0)), (lambda x: (x - offset) / scale)


def write_release(folder, payload=None, stats=None):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(release_payload() if payload is None else payload, folder / CKPT)
    (folder / STATS).write_text(json.dumps(upstream_stats() if stats is None else stats, indent=2))
    return {CKPT: folder / CKPT, STATS: folder / STATS}


# -- the upstream computation, from the code's formulas -----------------------------------------
def _lin(p, name, x):
    return F.linear(x, p[f"{name}.weight"].float(), p[f"{name}.bias"].float())


def _rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w.float()


def _ln(x, w=None, b=None, eps=1e-6):
    return F.layer_norm(x, (x.shape[-1],), None if w is None else w.float(), None if b is None else b.float(), eps)


def _sinusoid(dim, t):
    half = dim // 2
    s = torch.outer(t.double(), torch.pow(10000, -torch.arange(half, dtype=torch.float64).div(half)))
    return torch.cat([s.cos(), s.sin()], 1).float()


def _freqs(dim, n):
    f = 1.0 / (10000.0 ** (torch.arange(0, dim, 2)[: dim // 2].double() / dim))
    ang = torch.outer(torch.arange(n).double(), f)
    return torch.polar(torch.ones_like(ang), ang)


def _freqs_3d(hd, f, h, w):  # precompute_freqs_cis_3d + the concatenation in pre_dit
    ff, fh, fw = _freqs(hd - 2 * (hd // 3), f), _freqs(hd // 3, h), _freqs(hd // 3, w)
    return torch.cat([ff.view(f, 1, 1, -1).expand(f, h, w, -1), fh.view(1, h, 1, -1).expand(f, h, w, -1),
                      fw.view(1, 1, w, -1).expand(f, h, w, -1)], -1).reshape(f * h * w, 1, -1)


def _rope(x, freqs, heads):  # rope_apply: complex rotation of channel pairs
    b, s, _ = x.shape
    xc = torch.view_as_complex(x.double().reshape(b, s, heads, -1, 2))
    return torch.view_as_real(xc * freqs).flatten(2).float()


def _attn(q, k, v, heads, mask=None):
    sp = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)  # noqa: E731
    return F.scaled_dot_product_attention(sp(q), sp(k), sp(v), attn_mask=mask).transpose(1, 2).flatten(2)


def ref_qkv(p, x, t_mod, freqs, heads):
    """``MoT._build_expert_attention_io``: modulation split, AdaLN, q/k/v, RMSNorm, RoPE."""
    dim = 2 if t_mod.ndim == 4 else 1
    mods = (p["modulation"].float() + t_mod).chunk(6, dim=dim)
    mods = [m.squeeze(2) for m in mods] if t_mod.ndim == 4 else mods
    h = _ln(x) * (1 + mods[1]) + mods[0]
    q = _rms(_lin(p, "self_attn.q", h), p["self_attn.norm_q.weight"])
    k = _rms(_lin(p, "self_attn.k", h), p["self_attn.norm_k.weight"])
    return _rope(q, freqs, heads), _rope(k, freqs, heads), _lin(p, "self_attn.v", h), mods


def ref_post(p, x, attn_out, mods, ctx, heads):
    """``MoT._apply_expert_post_block``: gate, cross-attention on norm3(x), FFN on modulated norm2(x)."""
    x = x + mods[2] * _lin(p, "self_attn.o", attn_out)
    y = _ln(x, p["norm3.weight"], p["norm3.bias"])
    q = _rms(_lin(p, "cross_attn.q", y), p["cross_attn.norm_q.weight"])
    k = _rms(_lin(p, "cross_attn.k", ctx), p["cross_attn.norm_k.weight"])
    x = x + _lin(p, "cross_attn.o", _attn(q, k, _lin(p, "cross_attn.v", ctx), heads))
    h = _ln(x) * (1 + mods[4]) + mods[3]
    return x + mods[5] * _lin(p, "ffn.2", F.gelu(_lin(p, "ffn.0", h), approximate="tanh"))


def _sub(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _time(p, t):
    freq = p["time_embedding.0.weight"].shape[1]
    te = _lin(p, "time_embedding.2", F.silu(_lin(p, "time_embedding.0", _sinusoid(freq, t))))
    return te, _lin(p, "time_projection.1", F.silu(te))


def reference_actions(mot, proprio, image, state_n, context, noise, vae, latents_mean, latents_std,
                      heads=SIZES["heads"], steps=10, shift=5.0):
    """``FastWAM.infer_action`` for one sample: ``image`` [3, H, W] in [-1, 1] (cameras already
    composed), normalised proprio [1, S], context [1, L, text], initial noise [1, K, A]."""
    z = vae.encode(image[None, :, None]).latent_dist.mode().float()
    z = (z - latents_mean.view(1, -1, 1, 1, 1)) / latents_std.view(1, -1, 1, 1, 1)
    ctx = torch.cat([context, F.linear(state_n, proprio["weight"].float(), proprio["bias"].float())[:, None]], 1)
    pv, pa = _sub(mot, "mixtures.video."), _sub(mot, "mixtures.action.")
    x = F.conv3d(z, pv["patch_embedding.weight"].float(), pv["patch_embedding.bias"].float(), stride=(1, 2, 2))
    f, h, w = x.shape[2:]
    x = x.flatten(2).transpose(1, 2)
    dim = x.shape[-1]
    hd = pv["blocks.0.self_attn.q.weight"].shape[0] // heads
    _, t_mod = _time(pv, torch.zeros(f * h * w))            # first frame: t = 0 for every token
    t_mod = t_mod.reshape(1, -1, 6, dim)
    ctx_v = _lin(pv, "text_embedding.2", F.gelu(_lin(pv, "text_embedding.0", ctx), approximate="tanh"))
    fv = _freqs_3d(hd, f, h, w)
    cache = []
    for i in range(len({k.split(".")[1] for k in pv if k.startswith("blocks.")})):
        p = _sub(pv, f"blocks.{i}.")
        q, k, v, mods = ref_qkv(p, x, t_mod, fv, heads)
        cache.append((k, v))
        x = ref_post(p, x, _attn(q, k, v, heads), mods, ctx_v, heads)
    ctx_a = _lin(pa, "text_embedding.2", F.gelu(_lin(pa, "text_embedding.0", ctx), approximate="tanh"))
    u = torch.linspace(1.0, 0.0, steps + 1)
    sigmas = shift * u / (1 + (shift - 1) * u)
    a = noise.clone()
    fa = _freqs(hd, a.shape[1]).view(a.shape[1], 1, -1)
    for s in range(steps):
        _, tm = _time(pa, (sigmas[s] * 1000).reshape(1))
        y = _lin(pa, "action_encoder", a)
        tm = tm.unflatten(1, (6, -1))
        for i, (kv_k, kv_v) in enumerate(cache):
            p = _sub(pa, f"blocks.{i}.")
            q, k, v, mods = ref_qkv(p, y, tm, fa, heads)
            y = ref_post(p, y, _attn(q, torch.cat([kv_k, k], 1), torch.cat([kv_v, v], 1), heads), mods, ctx_a, heads)
        a = a + _lin(pa, "head", y) * (sigmas[s + 1] - sigmas[s])
    return a


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _load(name, cache, **kw):
    torch.manual_seed(0)  # the tiny test VAE is built from a config (random); real use loads the Wan VAE
    tiny = {**TINY, **(TINY_LIBERO if name == LIBERO else {})}
    return wamzoo.load(name, cache_dir=str(cache), **{**tiny, **kw})


def _obs(policy, B=1, seed=3, size=None):
    g = torch.Generator().manual_seed(seed)
    H, W = size or (policy.info.height, policy.info.width)
    return Batch(rgb=torch.rand(B, 1, policy.info.num_views, 3, H, W, generator=g),
                 state=torch.randn(B, policy.info.state_dim, generator=g) * 2,
                 instruction=torch.randn(B, 5, SIZES["text"], generator=g),
                 instruction_mask=torch.ones(B, 5, dtype=torch.bool))


def _libero(tmp_path, freq=256):
    """The LIBERO release in an offline Hugging Face cache, loaded by name; ``freq``: the width of its timestep
    features (Wan: 256), which the converter reads from the weights."""
    files = write_release(tmp_path / "src", release_payload(z={**SIZES, "freq": freq}))
    hub_cache(tmp_path / "cache", "yuanty/fastwam", files)
    policy = _load(LIBERO, tmp_path / "cache")
    assert {e.dit.condition_embedder.freq_dim for e in (policy.world_model, policy.action_expert)} == {freq}
    return policy, tmp_path


@pytest.fixture
def libero(tmp_path, offline):
    return _libero(tmp_path)


def _within(entry, lo_key, hi_key, n=64):
    """Values around [lo, hi] (+-1 on constant dimensions) that stay inside the code's [-5, 5] clamp."""
    lo, hi = torch.tensor(entry[lo_key]), torch.tensor(entry[hi_key])
    width = torch.where(hi - lo < 1e-4, torch.ones_like(lo), hi - lo)
    u = torch.rand(n, len(lo), generator=torch.Generator().manual_seed(11)) * 1.2 - 0.1
    return torch.where(hi - lo < 1e-4, lo + (u * 2 - 1) * 0.9, lo + u * width)


# -- the release -----------------------------------------------------------------------------
def test_release_by_name_offline_predicts_a_chunk(libero):
    policy, _ = libero
    info = policy.info
    assert (info.num_views, info.height, info.width, info.cameras) == (2, 16, 16, ["image", "wrist_image"])
    assert (info.action_dim, info.state_dim, info.horizon, info.frame_stride) == (3, 4, 8, 4)
    assert policy.codec.layout == "horizontal" and policy.codec.canvas == (16, 32)
    assert policy.config["upstream"]["step"] == 20000 and policy.config["upstream"]["format"] == "fast-wam.release"
    obs = _obs(policy, B=2, size=(16, 16))
    chunk = policy.predict_action(obs, generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (2, 8, 3) and torch.isfinite(chunk).all()


def test_every_upstream_tensor_lands_in_the_right_place(libero):
    """A few renames that matter most, checked by hand (the reference test checks them all numerically)."""
    policy, _ = libero
    mot, proprio = upstream_mot()
    sd = policy.state_dict()
    bf = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
    assert torch.equal(sd["world_model.dit.blocks.1.norm2.weight"], bf(mot["mixtures.video.blocks.1.norm3.weight"]))
    assert torch.equal(sd["action_expert.dit.blocks.0.scale_shift_table"],
                       bf(mot["mixtures.action.blocks.0.modulation"]))
    assert torch.equal(sd["world_model.dit.scale_shift_table"], bf(mot["mixtures.video.head.modulation"]))
    assert torch.equal(sd["world_model.dit.proj_out.weight"], bf(mot["mixtures.video.head.head.weight"]))
    assert torch.equal(sd["action_expert.dit.blocks.1.attn2.to_out.0.bias"],
                       bf(mot["mixtures.action.blocks.1.cross_attn.o.bias"]))
    assert torch.equal(sd["context.proprio.weight"], bf(proprio["weight"]))
    n_upstream = len(mot) + len(proprio)
    n_filled = sum(1 for k in sd if not k.startswith(("codec.", "normalizer.")))
    assert n_filled == n_upstream


def _acts_like_upstream(policy):
    mot, proprio = upstream_mot(z={**SIZES, "freq": policy.world_model.dit.condition_embedder.freq_dim})
    mot = {k: v.to(torch.bfloat16).float() for k, v in mot.items()}
    proprio = {k: v.to(torch.bfloat16).float() for k, v in proprio.items()}
    stats = upstream_stats()
    norm_state, _ = upstream_normalizer(stats["state"]["default"], "min/max")
    _, denorm_action = upstream_normalizer(stats["action"]["default"], "min/max")
    obs = _obs(policy, size=(16, 16))
    obs.state = _within(stats["state"]["default"], "global_min", "global_max")[:1]  # inside the code's clamp
    obs.state[0, 0] = stats["state"]["default"]["global_min"][0] + 0.25  # off the constant dimension
    noise = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(7))
    image = torch.cat([obs.rgb[0, 0, 0], obs.rgb[0, 0, 1]], dim=-1) * 2 - 1  # the code: cameras side by side
    vae = policy.codec.vae
    with torch.no_grad():
        want = denorm_action(reference_actions(mot, proprio, image, norm_state(obs.state), obs.instruction, noise,
                                               vae, torch.tensor(vae.config.latents_mean),
                                               torch.tensor(vae.config.latents_std)))
    got = policy.predict_action(obs, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, want, atol=2e-4, rtol=2e-4)


def test_release_acts_like_the_upstream_code(libero):
    _acts_like_upstream(libero[0])


def test_a_release_with_other_timestep_features_acts_like_the_upstream_code(tmp_path, offline):
    _acts_like_upstream(_libero(tmp_path, freq=64)[0])


def test_diffsynth_block_equals_wamzoo_block(libero):
    """One block, per-token modulation, RoPE, a self-attention mask and a context: the code's
    DiTBlock.forward (norm1 -> modulated self-attn -> norm3 cross-attn -> modulated norm2 FFN)."""
    from wamzoo.nn.rope import grid_positions, rope_angles_3d

    policy, _ = libero
    mot, _ = upstream_mot()
    p = {k: v.to(torch.bfloat16).float() for k, v in _sub(mot, "mixtures.video.blocks.1.").items()}
    g = torch.Generator().manual_seed(5)
    f, h, w, D, heads, hd = 2, 2, 3, SIZES["d"], SIZES["heads"], SIZES["hd"]
    x = torch.randn(2, f * h * w, D, generator=g)
    t_mod = torch.randn(2, f * h * w, 6, D, generator=g) * 0.5
    ctx = torch.randn(2, 5, D, generator=g)
    mask = torch.rand(f * h * w, f * h * w, generator=g) > 0.3
    mask |= torch.eye(f * h * w, dtype=torch.bool)
    q, k, v, mods = ref_qkv(p, x, t_mod, _freqs_3d(hd, f, h, w), heads)
    want = ref_post(p, x, _attn(q, k, v, heads, mask), mods, ctx, heads)
    block = policy.world_model.dit.blocks[1]
    got = block(x, t_mod, rope_angles_3d(grid_positions(f, h, w), hd), ctx, None, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_normalisation_round_trips_the_upstream_statistics(libero):
    policy, _ = libero
    stats = upstream_stats()
    for group, key in (("state", "state"), ("action", "action")):
        norm, denorm = upstream_normalizer(stats[group]["default"], "min/max")
        x = _within(stats[group]["default"], "global_min", "global_max")
        z = policy.normalizer.normalize(key, x)
        torch.testing.assert_close(z, norm(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(policy.normalizer.unnormalize(key, z), x, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(policy.normalizer.unnormalize(key, z), denorm(norm(x)), atol=1e-5, rtol=1e-5)
    assert getattr(policy.normalizer, "action_max").tolist()[:-1] == pytest.approx(
        stats["action"]["default"]["global_max"][:-1])


def test_robotwin_layout_and_z_score(tmp_path, offline):
    payload = release_payload(seed=4)
    stats = upstream_stats(seed=5)
    folder = tmp_path / "src"
    folder.mkdir()
    torch.save(payload, folder / "robotwin_uncond_3cam_384.pt")
    (folder / "robotwin_uncond_3cam_384_dataset_stats.json").write_text(json.dumps(stats))
    hub_cache(tmp_path / "cache", "yuanty/fastwam", {f.name: f for f in folder.iterdir()})
    policy = _load("fast-wam/robotwin-3cam384", tmp_path / "cache", canvas=[24, 32])
    assert policy.codec.layout == "robotwin" and policy.info.cameras == ["cam_high", "cam_left_wrist",
                                                                         "cam_right_wrist"]
    assert policy.normalizer.modes == {"action": "mean_std", "state": "mean_std"}
    norm, denorm = upstream_normalizer(stats["state"]["default"], "z-score")
    mean, std = (torch.tensor(stats["state"]["default"][k]) for k in ("global_mean", "global_std"))
    x = mean + std * (torch.rand(64, SIZES["s"], generator=torch.Generator().manual_seed(1)) * 6 - 3)
    torch.testing.assert_close(policy.normalizer.normalize("state", x), norm(x), atol=1e-5, rtol=1e-5)
    obs = _obs(policy, size=(12, 16))
    obs.state = x[:1]  # within 3 std: the code's clamp to [-5, 5] (not represented) does not act
    mot = {k: v.float() for k, v in payload["mot"].items()}
    proprio = {k: v.float() for k, v in payload["proprio_encoder"].items()}
    # the code's RoboTwin mosaic: head camera at 2/3 height over the two wrist cameras side by side
    rs = lambda im, s: F.interpolate(im[None], size=s, mode="bilinear", align_corners=False, antialias=True)[0]  # noqa
    v = obs.rgb[0, 0]
    image = torch.cat([rs(v[0], (16, 32)), torch.cat([rs(v[1], (8, 16)), rs(v[2], (8, 16))], -1)], -2) * 2 - 1
    noise = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(2))
    _, denorm_a = upstream_normalizer(stats["action"]["default"], "z-score")
    vae = policy.codec.vae
    with torch.no_grad():
        want = denorm_a(reference_actions(mot, proprio, image, norm(obs.state), obs.instruction, noise, vae,
                                          torch.tensor(vae.config.latents_mean), torch.tensor(vae.config.latents_std)))
    got = policy.predict_action(obs, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(got, want, atol=2e-4, rtol=2e-4)


def test_extra_upstream_key_is_reported(tmp_path, offline):
    payload = release_payload()
    payload["mot"]["mixtures.video.blocks.0.extra_adapter.weight"] = torch.zeros(3)
    payload["ema"] = {"w": torch.zeros(1)}
    hub_cache(tmp_path / "cache", "yuanty/fastwam", write_release(tmp_path / "src", payload))
    with pytest.raises(LoadError) as err:
        _load(LIBERO, tmp_path / "cache")
    msg = str(err.value)
    assert "2 upstream keys not consumed" in msg
    assert "mot.mixtures.video.blocks.0.extra_adapter.weight" in msg and "ema" in msg
    assert "not filled" not in msg


def test_missing_upstream_key_is_reported(tmp_path, offline):
    payload = release_payload()
    del payload["mot"]["mixtures.action.blocks.1.ffn.2.bias"]
    del payload["mot"]["mixtures.video.blocks.0.cross_attn.norm_k.weight"]
    hub_cache(tmp_path / "cache", "yuanty/fastwam", write_release(tmp_path / "src", payload))
    with pytest.raises(LoadError) as err:
        _load(LIBERO, tmp_path / "cache")
    msg = str(err.value)
    assert "2 wamzoo parameters not filled" in msg
    assert "action_expert.dit.blocks.1.ffn.net.2.bias" in msg and "world_model.dit.blocks.0.attn2.norm_k.weight" in msg


class Evil:
    """Not a tensor: a weights-only load must refuse it."""


def test_wrong_head_count_and_bad_pickles(tmp_path, offline):
    hub_cache(tmp_path / "cache", "yuanty/fastwam", write_release(tmp_path / "src"))
    with pytest.raises(LoadError, match="not divisible by num_heads=5"):
        _load(LIBERO, tmp_path / "cache", num_heads=5)
    with pytest.raises(LoadError, match="cannot be represented"):  # head_dim 4: the code and wamzoo split RoPE
        _load(LIBERO, tmp_path / "cache", num_heads=6)          # channels (2, 1, 1) vs (4, 0, 0)

    bad = tmp_path / "bad"
    bad.mkdir()
    with open(bad / CKPT, "wb") as fh:
        pickle.dump({"mot": {}, "hook": Evil()}, fh)
    (bad / STATS).write_text(json.dumps(upstream_stats()))
    hub_cache(tmp_path / "cache2", "yuanty/fastwam", {CKPT: bad / CKPT, STATS: bad / STATS})
    with pytest.raises(LoadError, match="not a weights-only pickle"):
        _load(LIBERO, tmp_path / "cache2")


def test_optimizer_state_is_dropped_and_reported(tmp_path, offline):
    payload = release_payload()
    payload["optimizer"] = {"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 1e-4}]}
    hub_cache(tmp_path / "cache", "yuanty/fastwam", write_release(tmp_path / "src", payload))
    policy = _load(LIBERO, tmp_path / "cache")
    assert "optimizer" in policy.config["upstream"]["dropped"]


def test_converted_policy_saves_and_reloads_natively(libero):
    policy, tmp = libero
    obs = _obs(policy, size=(16, 16))
    folder = policy.save_pretrained(tmp / "native")
    again = wamzoo.load(str(folder))
    assert again.codec.layout == "horizontal"
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(again.predict_action(obs, generator=g()), policy.predict_action(obs, generator=g()))


@pytest.mark.slow
def test_fresh_process_loads_the_release_offline(libero):
    policy, tmp = libero
    obs = _obs(policy, size=(16, 16))
    torch.save({"rgb": obs.rgb, "state": obs.state, "ins": obs.instruction,
                "a": policy.predict_action(obs, generator=torch.Generator().manual_seed(0))}, tmp / "io.pt")
    script = f"""
import torch, wamzoo
from wamzoo.batch import Batch
io = torch.load(r"{tmp / 'io.pt'}")
torch.manual_seed(0)
p = wamzoo.load("{LIBERO}", codec={VAE!r}, num_heads=2, horizon=8, canvas=[16, 32], camera_size=[16, 16])
a = p.predict_action(Batch(rgb=io["rgb"], state=io["state"], instruction=io["ins"],
                           instruction_mask=torch.ones(io["ins"].shape[:2], dtype=torch.bool)),
                     generator=torch.Generator().manual_seed(0))
assert torch.equal(a, io["a"]), (a - io["a"]).abs().max()
print("OK")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp / "cache"), "HF_HOME": str(tmp / "home"),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


# -- LeRobot ---------------------------------------------------------------------------------
LR_REPO = "someone/fastwam-tiny"


def lerobot_folder(folder, legacy=False, stats=None, proprio_dim=SIZES["s"]):
    """What ``FastWAMPolicy.save_pretrained`` + its processors write (LeRobot >= 0.6)."""
    from safetensors.torch import save_file

    mot, proprio = upstream_mot(seed=8)
    state = {}
    for k, v in mot.items():
        expert, rest = k.split(".", 2)[1], k.split(".", 2)[2]
        if rest.startswith("blocks.") and not legacy:  # MoTLayer owns the blocks
            i, tail = rest[len("blocks."):].split(".", 1)
            state[f"model.mot.layers.{i}.blocks.{expert}.{tail}"] = v
        else:
            state[f"model.mot.mixtures.{expert}.{rest}"] = v
    state.update({f"model.proprio_encoder.{k}": v for k, v in proprio.items()})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    image_keys = ["observation.images.wrist", "observation.images.front"]
    cfg = {"type": "fastwam", "n_obs_steps": 1, "action_dim": SIZES["a"], "proprio_dim": proprio_dim,
           "action_horizon": 8, "n_action_steps": 4, "num_video_frames": 33, "action_video_freq_ratio": 4,
           "image_size": [16, 32], "context_len": 128, "torch_dtype": "float32", "num_inference_steps": 6,
           "inference_seed": 42, "sigma_shift": None, "toggle_action_dimensions": [-1],
           "action_scheduler": {"train_shift": 5.0, "infer_shift": 3.0, "num_train_timesteps": 1000},
           "video_dit_config": {"hidden_dim": SIZES["d"], "num_heads": SIZES["heads"], "attn_head_dim": SIZES["hd"],
                                "video_attention_mask_mode": "first_frame_causal", "action_conditioned": False},
           "action_dit_config": {"hidden_dim": SIZES["da"], "num_heads": SIZES["heads"],
                                 "attn_head_dim": SIZES["hd"]},
           "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
           "input_features": {**{k: {"type": "VISUAL", "shape": [3, 16, 16]} for k in image_keys},
                              "observation.state": {"type": "STATE", "shape": [SIZES["s"]]}},
           "output_features": {"action": {"type": "ACTION", "shape": [SIZES["a"]]}}}
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    g = torch.Generator().manual_seed(9)
    stats = stats or {
        "observation.state": {"mean": torch.randn(SIZES["s"], generator=g),
                              "std": torch.rand(SIZES["s"], generator=g) + .5,
                              "min": -torch.ones(SIZES["s"]) * 3, "max": torch.ones(SIZES["s"]) * 3,
                              "q01": -torch.ones(SIZES["s"]), "q99": torch.ones(SIZES["s"]),
                              "count": torch.tensor([1000])},
        "action": {"mean": torch.randn(SIZES["a"], generator=g), "std": torch.rand(SIZES["a"], generator=g) + .5},
        "observation.images.front": {"mean": torch.full((3, 1, 1), 0.4), "std": torch.full((3, 1, 1), 0.2)}}
    flat = {f"{f}.{s}": t for f, d in stats.items() for s, t in d.items()}
    features = {"type": "VISUAL", "shape": [3, 16, 16]}
    norm_cfg = {"eps": 1e-8, "features": {k: features for k in image_keys}, "norm_map": cfg["normalization_mapping"]}
    pre = {"name": "policy_preprocessor", "steps": [
        {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
        {"registry_name": "to_batch_processor", "config": {}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        {"registry_name": "normalizer_processor", "config": norm_cfg,
         "state_file": "policy_preprocessor_step_3_normalizer_processor.safetensors"}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor", "config": norm_cfg,
         "state_file": "policy_postprocessor_step_0_unnormalizer_processor.safetensors"},
        {"registry_name": "fastwam_action_toggle_processor", "config": {"toggle_dimensions": [-1]}},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    (folder / "policy_preprocessor.json").write_text(json.dumps(pre))
    (folder / "policy_postprocessor.json").write_text(json.dumps(post))
    save_file(flat, str(folder / pre["steps"][3]["state_file"]))
    save_file({k: v for k, v in flat.items() if k.startswith("action.")}, str(folder / post["steps"][0]["state_file"]))
    return mot, proprio, stats


def _register(name, repo):
    import types

    from wamzoo.hookspecs import hookimpl
    from wamzoo.plugins import use_plugins
    from wamzoo_fast_wam.pretrained import lerobot_pretrained

    mod = types.SimpleNamespace(register_pretrained=hookimpl(lambda register: register(lerobot_pretrained(repo, name))))
    use_plugins(("lerobot-test", mod), entry_points=True)


@pytest.fixture
def lerobot(tmp_path, offline):
    from wamzoo.plugins import reset

    src = tmp_path / "lr"
    mot, proprio, stats = lerobot_folder(src)
    hub_cache(tmp_path / "cache", LR_REPO, {f.name: f for f in src.iterdir()})
    _register("test/lerobot-tiny", LR_REPO)
    yield tmp_path, mot, proprio, stats
    reset()


def test_lerobot_by_name_acts_like_lerobot(lerobot):
    tmp, mot, proprio, stats = lerobot
    torch.manual_seed(0)
    policy = wamzoo.load("test/lerobot-tiny", cache_dir=str(tmp / "cache"), codec=VAE)
    info = policy.info
    assert (info.cameras, info.height, info.width, info.horizon, info.num_views) == (["front", "wrist"], 16, 16, 8, 2)
    assert policy.normalizer.modes == {"action": "mean_std", "state": "mean_std"}
    assert policy.scheduler.phases[0].steps == {"action": 6} and policy.scheduler.infer_shift == 3.0
    assert policy.config["upstream"]["not_applied"]["toggle_action_dimensions"] == [-1]
    obs = _obs(policy, size=(20, 20))  # LeRobot resizes each camera to (H, W / n) inside the model
    mean_s, std_s = stats["observation.state"]["mean"], stats["observation.state"]["std"]
    mean_a, std_a = stats["action"]["mean"], stats["action"]["std"]
    rs = lambda im: F.interpolate(im[None], size=(16, 16), mode="bilinear", align_corners=False,  # noqa: E731
                                  antialias=True)[0]
    # sorted camera keys: front, wrist; the policy's views follow info.cameras
    image = torch.cat([rs(obs.rgb[0, 0, 0]), rs(obs.rgb[0, 0, 1])], -1) * 2.0 - 1.0
    noise = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(4))
    vae = policy.codec.vae
    with torch.no_grad():
        raw = reference_actions(mot, proprio, image, (obs.state - mean_s) / (std_s + 1e-8), obs.instruction, noise,
                                vae, torch.tensor(vae.config.latents_mean), torch.tensor(vae.config.latents_std),
                                steps=6, shift=3.0)
    want = raw * std_a + mean_a
    got = policy.predict_action(obs, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(got, want, atol=2e-4, rtol=2e-4)
    x = torch.randn(8, SIZES["a"])
    torch.testing.assert_close(policy.normalizer.unnormalize("action", policy.normalizer.normalize("action", x)), x)
    assert math.isnan(policy.normalizer.stats()["action"]["min"][0])  # not in the release: NaN, never invented


def test_lerobot_legacy_block_layout_loads_the_same(tmp_path):
    from wamzoo.hub import convert
    from wamzoo_fast_wam.pretrained import LEROBOT_FILES

    lerobot_folder(tmp_path / "new")
    lerobot_folder(tmp_path / "old", legacy=True)
    torch.manual_seed(0)
    a = convert("fast-wam.lerobot", {f: tmp_path / "new" / f for f in LEROBOT_FILES}, codec=VAE)
    torch.manual_seed(0)
    b = convert("fast-wam.lerobot", {f: tmp_path / "old" / f for f in LEROBOT_FILES}, codec=VAE)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # statistics LeRobot does not have are NaN in both
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, equal_nan=True)


def test_lerobot_errors(tmp_path):
    from safetensors.torch import load_file, save_file

    from wamzoo.hub import convert
    from wamzoo_fast_wam.pretrained import LEROBOT_FILES

    src = tmp_path / "lr"
    lerobot_folder(src)
    files = {f: src / f for f in LEROBOT_FILES}
    state = load_file(str(src / "model.safetensors"))
    state["model.mot.layers.0.blocks.action.lora_A.weight"] = torch.zeros(2, 2)
    del state["model.mot.mixtures.video.head.modulation"]
    save_file(state, str(src / "model.safetensors"))
    with pytest.raises(LoadError) as err:
        convert("fast-wam.lerobot", files, codec=VAE)
    msg = str(err.value)
    assert "model.mot.layers.0.blocks.action.lora_A.weight" in msg and "world_model.dit.scale_shift_table" in msg
    lerobot_folder(src)
    (src / "policy_preprocessor_step_3_normalizer_processor.safetensors").unlink()
    del files["policy_preprocessor_step_3_normalizer_processor.safetensors"]
    with pytest.raises(LoadError, match="statistics file .* is missing"):
        convert("fast-wam.lerobot", files, codec=VAE)
    lerobot_folder(src, stats={"action": {"min": torch.zeros(3), "max": torch.ones(3)},
                               "observation.state": {"mean": torch.zeros(4), "std": torch.ones(4)}})
    with pytest.raises(LoadError, match="needs mean, std but the release lacks mean, std"):
        convert("fast-wam.lerobot", {f: src / f for f in LEROBOT_FILES}, codec=VAE)
    cfg = json.loads((src / "config.json").read_text())
    cfg["video_dit_config"]["video_attention_mask_mode"] = "bidirectional"
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LoadError, match="first-frame-causal"):
        convert("fast-wam.lerobot", {f: src / f for f in LEROBOT_FILES}, codec=VAE)


def test_a_release_folder_loads_by_path(tmp_path, offline):
    """``wamzoo.load(folder)``: the release's files are recognised and converted with their registered options."""
    files = write_release(tmp_path / "src")
    torch.manual_seed(0)
    by_path = wamzoo.load(str(tmp_path / "src"), **TINY, **TINY_LIBERO)
    by_name, _ = _libero(tmp_path / "named")
    assert by_path.config["upstream"]["format"] == "fast-wam.release" and by_path.info.cameras == by_name.info.cameras
    obs = _obs(by_path, size=(16, 16))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(by_path.predict_action(obs, generator=gen()), by_name.predict_action(obs, generator=gen()))
    assert files


def test_a_folder_of_no_known_layout_lists_the_layouts(tmp_path):
    (tmp_path / "config.json").write_text('{"type": "act"}')
    with pytest.raises(LoadError) as err:
        wamzoo.load(str(tmp_path))
    msg = str(err.value)
    assert "holds no policy wamzoo can read" in msg and "wamzoo_schema" in msg
    assert "fast-wam.lerobot: a LeRobot FastWAM folder" in msg and "the files of a registered release" in msg
