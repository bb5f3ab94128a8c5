"""Converter of the released X-WAM checkpoints (HF ``sharinka0715/X-WAM-checkpoints``).

Small run folders are written here in the release's layout (read off the public code:
``scripts/train_sft.py`` saves ``config.yaml`` and Lightning/DeepSpeed writes
``checkpoints/last.ckpt/checkpoint/mp_rank_00_model_states.pt`` with ``XWAMRunner.state_dict()``
under ``module``; ``modules/wan_model.py`` gives the key names and shapes; ``configs/data/*.yaml``
the statistics; ``evaluation/policy_server.py`` the normalisation and the sampling loop), put in a
temporary Hugging Face cache and loaded by name with the Hub offline. The converted policy is
compared with an independent re-implementation of ``XWAMModel._forward_single`` and of the server's
early-stopped UniPC loop, written below from the upstream formulas.
"""

import collections
import json
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

import wamzoo
from wamzoo.batch import Batch
from wamzoo.errors import LoadError
from wamzoo.testing import hub_cache, upstream_wan_block

REPO = "sharinka0715/X-WAM-checkpoints"
STATES = "checkpoints/last.ckpt/checkpoint/mp_rank_00_model_states.pt"
MEAN, STD = [0.1, -0.2, 0.3, 0.0], [0.5, 2.0, 1.0, 1.5]
# a tiny Wan VAE with the Wan2.2 VAE's 4x temporal stride (X-WAM's RoPE assumes it); 4x spatial
VAE = {"name": "wan-vae", "config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2], "num_res_blocks": 1,
                                     "temperal_downsample": [True, True], "latents_mean": MEAN, "latents_std": STD}}
Z = dict(c=4, d=24, ffn=32, heads=2, layers=3, depth=1, text=16, views=3, a=14, s=16, size=16)
CAMERAS = {"robotwin_sft": ["head_camera", "left_camera", "right_camera"],
           "robocasa_sft": ["robot0_agentview_left", "robot0_agentview_right", "robot0_eye_in_hand"]}
NAME = {"robotwin_sft": "x-wam/robotwin", "robocasa_sft": "x-wam/robocasa"}


# -- the release, as the code writes it ---------------------------------------------------------
def upstream_model(seed=0, z=Z, extra=1):
    """``XWAMModel.state_dict()`` (without the ``model.`` prefix) at tiny sizes."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    d, c = z["d"], z["c"]
    p = {"patch_embedding.weight": r(d, c, 1, 2, 2), "patch_embedding.bias": r(d),
         "text_embedding.0.weight": r(d, z["text"]), "text_embedding.0.bias": r(d),
         "text_embedding.2.weight": r(d, d), "text_embedding.2.bias": r(d), "view_embedding.weight": r(z["views"], d),
         "time_embedding.0.weight": r(d, z.get("freq", 256)), "time_embedding.0.bias": r(d),
         "time_embedding.2.weight": r(d, d),
         "time_embedding.2.bias": r(d), "time_projection.1.weight": r(6 * d, d), "time_projection.1.bias": r(6 * d),
         "head.head.weight": r(4 * c, d), "head.head.bias": r(4 * c), "head.modulation": r(1, 2, d)}
    for i in range(z["layers"]):
        p.update({f"blocks.{i}.{k}": v for k, v in upstream_wan_block(r, d, z["ffn"]).items()})
    for hi in range(extra):
        for j in range(z["depth"]):
            p.update({f"extra_blocks.{hi}.{j}.{k}": v for k, v in upstream_wan_block(r, d, z["ffn"]).items()})
        p.update({f"extra_heads.{hi}.head.weight": r(4 * c, d), f"extra_heads.{hi}.head.bias": r(4 * c),
                  f"extra_heads.{hi}.modulation": r(1, 2, d)})
    for name, i, o in (("action_encoder", z["a"], d), ("action_decoder", d, z["a"]), ("proprio_encoder", z["s"], d),
                       ("proprio_decoder", d, z["s"])):
        p.update({f"{name}.0.weight": r(d, i), f"{name}.0.bias": r(d), f"{name}.2.weight": r(o, d),
                  f"{name}.2.bias": r(o)})
    return p


def model_states(seed=0, extra=1, dtype=torch.bfloat16, z=Z):
    """What Lightning's DeepSpeedStrategy writes as ``mp_rank_00_model_states.pt`` (bf16 training)."""
    model = upstream_model(seed, z, extra=extra)
    module = collections.OrderedDict((f"model.{k}", v.to(dtype)) for k, v in model.items())
    module["text_encoder.model.token_embedding.weight"] = torch.zeros(8, 16, dtype=dtype)
    module["text_encoder.model.blocks.0.attn.q.weight"] = torch.zeros(16, 16, dtype=dtype)
    module["vae.mean"], module["vae.std"] = torch.tensor(MEAN), torch.tensor(STD)
    module["vae.model.encoder.conv1.weight"] = torch.zeros(4, 3, 3, 3, 3)
    shapes = collections.OrderedDict((k, v.shape) for k, v in module.items() if k.startswith("model."))
    return {"module": module, "buffer_names": [], "optimizer": None, "param_shapes": [shapes],
            "frozen_param_shapes": collections.OrderedDict(a=torch.Size([8, 16])), "shared_params": {},
            "frozen_param_fragments": None, "lr_scheduler": None, "data_sampler": None, "random_ltd": None,
            "sparse_tensor_module_names": set(), "skipped_steps": 0, "global_steps": 40000,
            "global_samples": 40000 * 32, "dp_world_size": 8, "mp_world_size": 1,
            "ds_config": {"train_micro_batch_size_per_gpu": 4, "bf16": {"enabled": True}}, "ds_version": "0.16.4",
            "epoch": 3, "global_step": 40000, "pytorch-lightning_version": "2.5.1",
            "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 40000}}},
            "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "", "kth_value": torch.tensor(math.inf),
                                                               "dirpath": "experiments/robotwin_sft/checkpoints"}},
            "lr_schedulers": [{"base_lrs": [1e-5], "last_epoch": 40000, "_step_count": 40001, "lr_lambdas": [{}]}]}


def run_config(run="robotwin_sft"):
    """The ``config.yaml`` of a run (``train_sft.py``: model config with the data config under ``dataset``)."""
    g = torch.Generator().manual_seed(5 if run == "robotwin_sft" else 6)
    u = lambda n, lo, hi: (lo + (hi - lo) * torch.rand(n, generator=g)).tolist()  # noqa: E731
    arms = ("left", "right") if run == "robotwin_sft" else ("left",)
    q01, q99 = {}, {}
    for arm in arms:
        q01[f"proprio_{arm}_ee_xyz"], q99[f"proprio_{arm}_ee_xyz"] = u(3, -0.4, -0.1), u(3, 0.1, 1.1)
        m = u(3, 0.01, 0.05)
        q01[f"action_{arm}_ee_xyz"], q99[f"action_{arm}_ee_xyz"] = [-x for x in m], m
        m = u(3, 0.04, 0.09)
        q01[f"action_{arm}_ee_axisangle"], q99[f"action_{arm}_ee_axisangle"] = [-x for x in m], m
    q01["gripper_pos"], q99["gripper_pos"] = [0.0], [1.0]
    q01["gripper_action"], q99["gripper_action"] = ([-0.075], [0.075]) if run == "robotwin_sft" else ([-1.0], [1.0])
    return {"t5_model": "umt5_xxl", "text_len": 512, "vae_stride": "(4, 16, 16)", "num_extra_layers": Z["depth"],
            "dataset": {"dataset_path": "./sft_datasets/RoboTwin/", "sequence_length": 9, "frame_skip": 4,
                        "action_skip": 1, "video_size": [Z["size"], Z["size"]], "inverse_gripper": False,
                        "statistics": {"q01": q01, "q99": q99}},
            "action_dim": Z["a"], "proprio_dim": Z["s"], "time_shifting": 5.0, "use_depth": True,
            "flow_matching_num_train_timesteps": 1000, "sample_steps": 50, "frame_num": 9,
            "use_decoupled_inference": True, "action_denoise_steps": 10, "action_num": 4, "seed": 42}


def write_run(folder, run="robotwin_sft", states=None, config=None):
    import yaml

    (folder / run / "checkpoints/last.ckpt/checkpoint").mkdir(parents=True, exist_ok=True)
    torch.save(model_states() if states is None else states, folder / run / STATES)
    (folder / run / "config.yaml").write_text(yaml.safe_dump(run_config(run) if config is None else config))
    return {f"{run}/{STATES}": folder / run / STATES, f"{run}/config.yaml": folder / run / "config.yaml"}


def server_statistics(cfg):
    """``build_statistics`` of the policy server, written out for the test."""
    s = cfg["dataset"]["statistics"]
    right = "proprio_right_ee_xyz" in s["q01"]
    out = {}
    for q in ("q01", "q99"):
        one = -1.0 if q == "q01" else 1.0
        b = s[q]
        st = b["proprio_left_ee_xyz"] + [one] * 4 + b["gripper_pos"]
        st += (b["proprio_right_ee_xyz"] + [one] * 4 + b["gripper_pos"]) if right else [one] * 8
        ac = b["action_left_ee_xyz"] + b["action_left_ee_axisangle"] + b["gripper_action"]
        if right:
            ac += b["action_right_ee_xyz"] + b["action_right_ee_axisangle"] + b["gripper_action"]
        out[q] = (torch.tensor(st), torch.tensor(ac))
    return out, right


# -- the upstream computation, from the code's formulas -----------------------------------------
def _lin(p, name, x):
    return F.linear(x, p[f"{name}.weight"], p[f"{name}.bias"])


def _mlp(p, name, x):
    return _lin(p, f"{name}.2", F.gelu(_lin(p, f"{name}.0", x), approximate="tanh"))


def _ln(x, w=None, b=None):
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-6)


def _rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


def _sinusoid(t, dim=256):
    half = dim // 2
    s = torch.outer(t.double(), torch.pow(10000, -torch.arange(half, dtype=torch.float64).div(half)))
    return torch.cat([s.cos(), s.sin()], 1).float()


def _angles(pos, dim):  # rope_params: position * theta^(-2i/dim)
    return torch.outer(pos.double(), 1.0 / torch.pow(10000, torch.arange(0, dim, 2, dtype=torch.float64).div(dim)))


def _freqs(frame, row, col, hd):
    """Per-token complex RoPE factors: frame / row / col parts of Wan2.2's split (d - 4(d//6), 2(d//6), 2(d//6))."""
    s = 2 * (hd // 6)
    ang = torch.cat([_angles(frame, hd - 2 * s), _angles(row, s), _angles(col, s)], 1)
    return torch.polar(torch.ones_like(ang), ang)


def _rope(x, freqs, heads):  # rope_apply_1d
    B, L, _ = x.shape
    xc = torch.view_as_complex(x.double().reshape(B, L, heads, -1, 2))
    return torch.view_as_real(xc * freqs[None, :, None]).flatten(2).float()


def _attn(q, k, v, heads):
    sp = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)  # noqa: E731
    return F.scaled_dot_product_attention(sp(q), sp(k), sp(v)).transpose(1, 2).flatten(2)


def ref_block(p, x, e0, freqs, ctx, heads, cache=None):
    """``WanAttentionBlock.forward``: returns (x, rope_k, v); ``cache`` = the main block's (k, v) for a
    depth block, whose queries attend to ``[own k, cache k]``."""
    m = [t.squeeze(2) for t in (p["modulation"][None] + e0).chunk(6, dim=2)]
    h = _ln(x) * (1 + m[1]) + m[0]
    q = _rope(_rms(_lin(p, "self_attn.q", h), p["self_attn.norm_q.weight"]), freqs, heads)
    k = _rope(_rms(_lin(p, "self_attn.k", h), p["self_attn.norm_k.weight"]), freqs, heads)
    v = _lin(p, "self_attn.v", h)
    kk, vv = (k, v) if cache is None else (torch.cat([k, cache[0]], 1), torch.cat([v, cache[1]], 1))
    x = x + _lin(p, "self_attn.o", _attn(q, kk, vv, heads)) * m[2]
    y = _ln(x, p["norm3.weight"], p["norm3.bias"])
    cq = _rms(_lin(p, "cross_attn.q", y), p["cross_attn.norm_q.weight"])
    ck = _rms(_lin(p, "cross_attn.k", ctx), p["cross_attn.norm_k.weight"])
    x = x + _lin(p, "cross_attn.o", _attn(cq, ck, _lin(p, "cross_attn.v", ctx), heads))
    x = x + _lin(p, "ffn.2", F.gelu(_lin(p, "ffn.0", _ln(x) * (1 + m[4]) + m[3]), approximate="tanh")) * m[5]
    return x, k, v


def _head(p, prefix, x, e):
    shift, scale = (p[f"{prefix}.modulation"][None] + e[:, :, None]).chunk(2, dim=2)
    return _lin(p, f"{prefix}.head", _ln(x) * (1 + scale.squeeze(2)) + shift.squeeze(2))


def _sub(p, prefix):
    return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}


def ref_forward(p, x, t, context, actions, t_a, proprios, t_p, heads=Z["heads"], action_num=4, run_depth=True,
                freq=256):
    """``XWAMModel._forward_single``: x ``[B, C, T, V, H, W]``, t ``[B, T]``, t_a ``[B, Ta]``, t_p ``[B, Tp]``
    (times x 1000). Returns video ``[B, C, T, V, H, W]``, actions, proprios and depth (or None)."""
    B, C, T, V, H, W = x.shape
    Ta, Tp = actions.shape[1], proprios.shape[1]
    z = F.conv3d(x.permute(0, 3, 1, 2, 4, 5).reshape(B * V, C, T, H, W), p["patch_embedding.weight"],
                 p["patch_embedding.bias"], stride=(1, 2, 2))
    f, h, w = z.shape[2:]
    z = z.flatten(2).transpose(1, 2).reshape(B, V, f * h * w, -1) + p["view_embedding.weight"][None, :, None]
    z = z.reshape(B, V, f, h * w, -1).transpose(1, 2).reshape(B, f * V * h * w, -1)  # "b (t v hw) d"
    hd = z.shape[-1] // heads
    fr = torch.arange(f).repeat_interleave(V * h * w).double()
    row = torch.arange(h).repeat_interleave(w).repeat(f * V).double()
    col = torch.arange(w).repeat(f * V * h).double()
    video_freqs = _freqs(fr, row, col, hd)
    freqs = torch.cat([video_freqs, _freqs(torch.arange(Ta) / (action_num * 4), torch.zeros(Ta), torch.zeros(Ta), hd),
                       _freqs(torch.arange(Tp) / 4, torch.zeros(Tp), torch.zeros(Tp), hd)])
    seq = torch.cat([z, _mlp(p, "action_encoder", actions), _mlp(p, "proprio_encoder", proprios)], 1)
    ctx = _mlp(p, "text_embedding", context)
    t_seq = torch.cat([t.repeat_interleave(V * h * w, 1), t_a, t_p], 1)
    e = _lin(p, "time_embedding.2", F.silu(_lin(p, "time_embedding.0", _sinusoid(t_seq.flatten(), freq))))
    e = e.unflatten(0, t_seq.shape)
    e0 = _lin(p, "time_projection.1", F.silu(e)).unflatten(2, (6, -1))
    nv = f * V * h * w
    layers = len({k.split(".")[1] for k in p if k.startswith("blocks.")})
    depth = len({k.split(".")[2] for k in p if k.startswith("extra_blocks.0.")}) if run_depth else 0
    extra = None
    for i in range(layers):
        if depth and i == layers - depth:
            extra = seq[:, :nv]
        seq, k, v = ref_block(_sub(p, f"blocks.{i}."), seq, e0, freqs, ctx, heads)
        if extra is not None:
            j = i - (layers - depth)
            extra = ref_block(_sub(p, f"extra_blocks.0.{j}."), extra, e0[:, :nv], video_freqs, ctx, heads, (k, v))[0]

    def unpatch(y):  # "b (t v hw) (q r c)" -> [B, C, T, V, H, W]
        y = y.reshape(B, f, V, h, w, 2, 2, C)
        return y.permute(0, 7, 1, 2, 3, 5, 4, 6).reshape(B, C, f, V, h * 2, w * 2)

    out_v = unpatch(_head(p, "head", seq[:, :nv], e[:, :nv]))
    out_d = None if extra is None else unpatch(_head(p, "extra_heads.0", extra, e[:, :nv]))
    return out_v, _mlp(p, "action_decoder", seq[:, nv: nv + Ta]), _mlp(p, "proprio_decoder", seq[:, nv + Ta:]), out_d


def release_grid(steps, shift=5.0):
    """The release's UniPC times: ``FlowUniPCMultistepScheduler(shift=1).set_timesteps(steps, shift=5)``
    steps on ``phi(linspace(sigma_max, sigma_min, steps + 1)[:-1])`` with ``sigma_max = 1 - 1/1000``,
    ``sigma_min = 0``, then 0."""
    grid = torch.linspace(0.999, 0.0, steps + 1, dtype=torch.float64)[:-1]
    return torch.cat([shift * grid / (1 + (shift - 1) * grid), torch.zeros(1, dtype=torch.float64)])


def flow_unipc(steps, shift=5.0):
    """UniPC for flow matching (the release's file is a copy of diffusers 0.31's UniPC) on the release's
    :func:`release_grid`, set as the release sets it: a shift-1 scheduler given the shifted times."""
    from diffusers import UniPCMultistepScheduler

    s = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                                flow_shift=1.0, solver_order=2)
    s.set_timesteps(sigmas=release_grid(steps, shift)[:-1].numpy())
    return s


def ref_generate(p, z0, context, s0, noise_v, noise_a, noise_p, video_steps=50, action_steps=10):
    """``XWAMRunner.forward`` with ``early_stop=True``, ``run_depth=False``, ``cfg=0``, except for a
    sampler detail wamzoo does not represent (module doc of :mod:`wamzoo_x_wam.convert`): the model's
    time is ``sigma * 1000`` (the release casts it to int64 first)."""
    sv, sa, sp = flow_unipc(video_steps), flow_unipc(action_steps), flow_unipc(action_steps)
    xv = noise_v.clone()
    xv[:, :, :1] = z0
    xa, xp = noise_a.clone(), noise_p.clone()
    xp[:, 0] = s0
    B, T, Ta, Tp = xv.shape[0], xv.shape[2], xa.shape[1], xp.shape[1]
    for i in range(action_steps):
        tv, ta = float(sv.sigmas[i]) * 1000, float(sa.sigmas[i]) * 1000
        t = torch.full((B, T), tv)
        t[:, 0] = 0
        tp = torch.full((B, Tp), ta)
        tp[:, 0] = 0
        v, va, vp, _ = ref_forward(p, xv, t, context, xa, torch.full((B, Ta), ta), xp, tp, run_depth=False)
        xv = sv.step(v, sv.timesteps[i], xv, return_dict=False)[0]
        xv[:, :, :1] = z0
        xa = sa.step(va, sa.timesteps[i], xa, return_dict=False)[0]
        xp = sp.step(vp, sp.timesteps[i], xp, return_dict=False)[0]
        xp[:, 0] = s0
    return xa


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _load(name, cache, **kw):
    torch.manual_seed(0)  # the tiny test VAE is built from a config (random); real use loads the Wan2.2 VAE
    return wamzoo.load(name, cache_dir=str(cache), **{"codec": VAE, "num_heads": Z["heads"], **kw})


def _release(tmp_path, run="robotwin_sft", **kw):
    hub_cache(tmp_path / "cache", REPO, write_run(tmp_path / "src", run, **kw))
    return _load(NAME[run], tmp_path / "cache")


@pytest.fixture
def robotwin(tmp_path, offline):
    return _release(tmp_path)


def _obs(policy, B=1, seed=3):
    g = torch.Generator().manual_seed(seed)
    i = policy.info
    return Batch(rgb=torch.rand(B, 1, i.num_views, 3, i.height, i.width, generator=g),
                 state=torch.randn(B, i.state_dim, generator=g) * 0.3,
                 instruction=torch.randn(B, 7, Z["text"], generator=g), instruction_mask=torch.ones(B, 7, dtype=torch.bool))


def _bf(p):
    return {k: v.to(torch.bfloat16).float() for k, v in p.items()}


def _close(got, want, rel=1e-4):
    """Equal up to float32 rounding, relative to the largest value (random tiny weights give activations
    of hundreds)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    err, scale = float((got - want).abs().max()), float(want.abs().max())
    assert err <= rel * scale, f"max |difference| {err:.3g} for values up to {scale:.3g}"


# -- tests -------------------------------------------------------------------------------------
def test_release_by_name_offline_predicts_a_chunk(robotwin):
    policy = robotwin
    info = policy.info
    assert info.cameras == CAMERAS["robotwin_sft"] and (info.num_views, info.height, info.width) == (3, 16, 16)
    assert (info.action_dim, info.state_dim, info.horizon, info.n_future, info.frame_stride) == (14, 16, 32, 8, 4)
    assert policy.codec.layout is None  # views are separate tokens, each encoded on its own
    assert policy.world_model.depth.num_layers == Z["depth"] and policy.normalizer.modes == {
        "action": "quantile", "state": "quantile"}
    sch = policy.scheduler
    assert (sch.video_steps, sch.action_steps, sch.shift, sch.solver) == (50, 10, 5.0, "unipc")
    up = policy.config["upstream"]
    assert up["format"] == "x-wam.release" and up["global_step"] == 40000 and up["action_dims_used"] == 14
    assert "optimizer" in up["dropped"] and "text_encoder.model.token_embedding.weight" in up["dropped"]
    chunk = policy.predict_action(_obs(policy, B=2), generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (2, 32, 14) and torch.isfinite(chunk).all()


def test_every_upstream_tensor_lands_in_the_right_place(robotwin):
    sd = robotwin.state_dict()
    p = _bf(upstream_model())
    assert torch.equal(sd["world_model.dit.blocks.2.norm2.weight"], p["blocks.2.norm3.weight"])
    assert torch.equal(sd["world_model.depth.blocks.0.attn1.to_k.weight"], p["extra_blocks.0.0.self_attn.k.weight"])
    assert torch.equal(sd["world_model.depth.head.scale_shift_table"], p["extra_heads.0.modulation"])
    assert torch.equal(sd["world_model.view_embedding.weight"], p["view_embedding.weight"])
    assert torch.equal(sd["action_expert.state_decoder.2.bias"], p["proprio_decoder.2.bias"])
    n_filled = sum(1 for k in sd if not k.startswith(("codec.", "normalizer.")))
    assert n_filled == len(p)  # every parameter from exactly one upstream tensor


def test_one_forward_equals_the_upstream_model_with_depth(robotwin):
    """Video, action, state and depth outputs of one network evaluation at arbitrary per-token times."""
    _one_forward(robotwin, upstream_model())


def test_a_time_frequency_width_other_than_256_is_read_from_the_weights(tmp_path, offline):
    z = {**Z, "freq": 128}
    policy = _release(tmp_path, states=model_states(z=z))
    assert policy.world_model.dit.condition_embedder.freq_dim == 128
    _one_forward(policy, upstream_model(z=z), freq=128)


def _one_forward(policy, upstream, freq=256):
    i = policy.info
    g = torch.Generator().manual_seed(1)
    B = 2
    batch = Batch(rgb=torch.rand(B, 9, 3, 3, i.height, i.width, generator=g), state=torch.randn(B, 16, generator=g),
                  depth=0.5 + torch.rand(B, 9, 3, 1, i.height, i.width, generator=g),
                  action=torch.randn(B, 32, 14, generator=g), instruction=torch.randn(B, 5, Z["text"], generator=g))
    batch.future_state = torch.randn(B, 8, 16, generator=g)
    streams, cond = policy.build_streams(batch, train=True)
    video, act, state = streams["video"], streams["action"], streams["state"]
    video.x = torch.randn(video.x.shape, generator=g)
    video.t = torch.rand(B, 3, generator=g) * torch.tensor([0.0, 1.0, 1.0])
    act.x, act.t = torch.randn(act.x.shape, generator=g), torch.rand(B, 1, generator=g).expand(B, 32)
    state.x = torch.randn(state.x.shape, generator=g)
    state.t = act.t[:, :1].expand(B, 9) * (torch.arange(9) > 0)
    with torch.no_grad():
        out = policy.coupling(policy.world_model, policy.action_expert, streams, cond)
        want = ref_forward(_bf(upstream), video.x.permute(0, 3, 1, 2, 4, 5), video.t * 1000,
                           batch.instruction, act.x, act.t * 1000, state.x, state.t * 1000, freq=freq)
    _close(out["video"].permute(0, 3, 1, 2, 4, 5), want[0])
    _close(out["action"], want[1])
    _close(out["state"], want[2])
    _close(out["depth"].permute(0, 3, 1, 2, 4, 5), want[3])


@pytest.mark.parametrize("run", ["robotwin_sft", "robocasa_sft"])
def test_actions_equal_the_policy_servers(tmp_path, offline, run):
    """The server's loop: normalise the state, early-stopped UniPC (10 of 50 video steps), unnormalise;
    RoboCasa (single arm): the gripper sign flip after unnormalising, folded into the action MLPs."""
    policy = _release(tmp_path, run)
    cfg = run_config(run)
    (q01_s, q01_a), (q99_s, q99_a) = server_statistics(cfg)[0].values()
    right = run == "robotwin_sft"
    obs = _obs(policy, seed=4)
    if not right:
        obs.state[:, 8:] = 0.0  # the RoboCasa client pads the absent arm with zeros
    g = torch.Generator().manual_seed(7)  # wamzoo draws video, then action, then state noise
    nv = torch.randn(1, 3, 3, Z["c"], 4, 4, generator=g)
    na = torch.randn(1, 32, 14, generator=g)
    ns = torch.randn(1, 9, 16, generator=g)
    flip = torch.ones(14)
    if not right:
        flip[6] = -1  # the folded sign: wamzoo's variable is the release's with that dimension negated
    s0 = 2 * (obs.state - q01_s) / (q99_s - q01_s) - 1
    if not right:
        s0[:, 8:] = 0.0  # the server zeroes them (identity statistics give the same for zero padding)
    with torch.no_grad():
        z0 = policy.codec.encode(obs.rgb)[:, 0].permute(0, 2, 1, 3, 4)[:, :, None]
        xa = ref_generate(_bf(upstream_model()), z0, obs.instruction, s0, nv.permute(0, 3, 1, 2, 4, 5), na * flip, ns)
    n = len(q01_a)
    want = xa.clone()
    want[..., :n] = (xa[..., :n] + 1) / 2 * (q99_a - q01_a) + q01_a
    if not right:
        want[..., 6] *= -1.0
    got = policy.predict_action(obs, generator=torch.Generator().manual_seed(7))
    _close(got, want)
    assert policy.config["upstream"]["action_dims_used"] == n == (14 if right else 7)


def test_normalisation_round_trips_the_servers_statistics(robotwin):
    policy = robotwin
    (q01_s, q01_a), (q99_s, q99_a) = server_statistics(run_config())[0].values()
    g = torch.Generator().manual_seed(2)
    for key, lo, hi in (("state", q01_s, q99_s), ("action", q01_a, q99_a)):
        x = lo + (hi - lo) * (torch.rand(64, len(lo), generator=g) * 1.4 - 0.2)
        z = policy.normalizer.normalize(key, x)
        torch.testing.assert_close(z, 2 * (x - lo) / (hi - lo) - 1, atol=1e-5, rtol=1e-5)  # the server's formula
        torch.testing.assert_close(policy.normalizer.unnormalize(key, z), x, atol=1e-5, rtol=1e-5)
    assert math.isnan(policy.normalizer.stats()["action"]["mean"][0])  # not in the release: NaN, never invented


def test_extra_upstream_key_is_reported(tmp_path, offline):
    states = model_states()
    states["module"]["model.blocks.0.lora_A.weight"] = torch.zeros(2, 2)
    states["zero_stage_extra"] = {"x": 1}
    hub_cache(tmp_path / "cache", REPO, write_run(tmp_path / "src", states=states))
    with pytest.raises(LoadError) as err:
        _load("x-wam/robotwin", tmp_path / "cache")
    msg = str(err.value)
    assert "2 upstream keys not consumed" in msg and "model.blocks.0.lora_A.weight" in msg
    assert "zero_stage_extra" in msg and "not filled" not in msg


def test_missing_upstream_key_is_reported(tmp_path, offline):
    states = model_states()
    del states["module"]["model.extra_heads.0.modulation"]
    del states["module"]["model.proprio_decoder.0.bias"]
    hub_cache(tmp_path / "cache", REPO, write_run(tmp_path / "src", states=states))
    with pytest.raises(LoadError) as err:
        _load("x-wam/robotwin", tmp_path / "cache")
    msg = str(err.value)
    assert "2 wamzoo parameters not filled" in msg
    assert "world_model.depth.head.scale_shift_table" in msg and "action_expert.state_decoder.0.bias" in msg


class Evil:
    """Not a tensor: a weights-only load must refuse it."""


def test_refusals(tmp_path, offline):
    bad = tmp_path / "bad"
    files = write_run(bad)
    with open(files[f"robotwin_sft/{STATES}"], "wb") as fh:
        pickle.dump({"module": {}, "hook": Evil()}, fh, protocol=2)
    hub_cache(tmp_path / "c1", REPO, files)
    with pytest.raises(LoadError, match="not a weights-only pickle"):
        _load("x-wam/robotwin", tmp_path / "c1")

    hub_cache(tmp_path / "c2", REPO, write_run(tmp_path / "two", states=model_states(extra=2)))
    with pytest.raises(LoadError, match="2 extra modality branches.*has one, the depth branch"):
        _load("x-wam/robotwin", tmp_path / "c2")

    states = model_states()
    states["module"]["vae.std"] = torch.ones(4)
    hub_cache(tmp_path / "c3", REPO, write_run(tmp_path / "std", states=states))
    with pytest.raises(LoadError, match="vae.std"):
        _load("x-wam/robotwin", tmp_path / "c3")
    two_x = {**VAE, "config": {**VAE["config"], "temperal_downsample": [True, False]}}  # 2 frames per latent
    with pytest.raises(LoadError, match="puts 2 frames in a latent frame"):
        _load("x-wam/robotwin", tmp_path / "c3", codec=two_x)
    with pytest.raises(LoadError, match="not divisible by num_heads=5"):
        _load("x-wam/robotwin", tmp_path / "c3", num_heads=5)

    cfg = run_config()
    cfg["flow_matching_num_train_timesteps"] = 500
    hub_cache(tmp_path / "c5", REPO, write_run(tmp_path / "steps", config=cfg))
    with pytest.raises(LoadError, match="flow_matching_num_train_timesteps=500.*cannot be represented"):
        _load("x-wam/robotwin", tmp_path / "c5")

    cfg = run_config()
    del cfg["dataset"]["statistics"]["q99"]["gripper_action"]
    hub_cache(tmp_path / "c4", REPO, write_run(tmp_path / "stats", config=cfg))
    with pytest.raises(LoadError, match="lack 'gripper_action'"):
        _load("x-wam/robotwin", tmp_path / "c4")


def test_converted_policy_saves_and_reloads_natively(robotwin, tmp_path):
    obs = _obs(robotwin)
    folder = robotwin.save_pretrained(tmp_path / "native")
    again = wamzoo.load(str(folder))
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert torch.equal(again.predict_action(obs, generator=gen()), robotwin.predict_action(obs, generator=gen()))
    assert json.loads((folder / "config.json").read_text())["recipe"]["upstream"]["format"] == "x-wam.release"


def test_sampler_uses_the_release_grid(robotwin, tmp_path):
    assert robotwin.scheduler.infer_grid == (0.999, 0.0)
    for steps in (robotwin.scheduler.video_steps, robotwin.scheduler.action_steps):
        for name in ("video", "action", "state"):
            torch.testing.assert_close(robotwin.scheduler.sampler(name, steps).sigmas.double(), release_grid(steps),
                                       atol=1e-6, rtol=0)
    again = wamzoo.load(str(robotwin.save_pretrained(tmp_path / "native")))  # the grid is part of the recipe
    assert again.scheduler.infer_grid == (0.999, 0.0)


def test_a_run_folder_loads_by_path(tmp_path, offline):
    """``wamzoo.load(folder)``: the run folder of a release (or the repository holding just that run) is found by
    its files; a repository holding two runs is ambiguous and says so."""
    by_name = _release(tmp_path)
    for folder in (tmp_path / "src" / "robotwin_sft", tmp_path / "src"):
        by_path = _load(str(folder), None)
        assert by_path.config["upstream"] == by_name.config["upstream"]
        for key, value in by_name.state_dict().items():  # q01/q99 statistics only: the others are NaN
            torch.testing.assert_close(by_path.state_dict()[key], value, rtol=0, atol=0, equal_nan=True)
    write_run(tmp_path / "src", "robocasa_sft")
    with pytest.raises(LoadError, match="fits several checkpoints.*x-wam.robo"):
        _load(str(tmp_path / "src"), None)
