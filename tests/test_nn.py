"""Building blocks: Wan compatibility, RoPE, masks, cached attention, flow matching, samplers."""

import numpy as np
import pytest
import torch

from wamzoo.nn.attention import KVCache
from wamzoo.nn.dit import DiTBlock
from wamzoo.nn.flow_matching import (BumpWeight, flow_loss, interpolate, sample_logit_normal, sample_shifted_uniform,
                                     shift_time, velocity_target)
from wamzoo.nn.masks import MaskRules, TokenGroup, closed_subset
from wamzoo.nn.mot import TokenSet, assign_indices, run_layers
from wamzoo.nn.rope import grid_positions, rope_angles_1d, rope_angles_3d
from wamzoo.nn.video_dit import VideoDiT
from wamzoo.samplers import FlowSampler

FIRST_FRAME_CAUSAL = {"video.cond -> video.cond": "all", "video.future -> video.*": "all",
                      "action -> action": "all", "action -> video.cond": "all"}


@pytest.fixture(scope="module")
def wan():
    return pytest.importorskip("diffusers.models.transformers.transformer_wan")


def test_dit_block_matches_diffusers_wan_block(wan):
    torch.manual_seed(0)
    ref = wan.WanTransformerBlock(dim=64, ffn_dim=128, num_heads=4, cross_attn_norm=True)
    mine = DiTBlock(64, 128, 4, cross_attention=True, cross_attn_norm=True)
    assert set(ref.state_dict()) == set(mine.state_dict())
    mine.load_state_dict(ref.state_dict())
    B, F, H, W = 2, 3, 4, 4
    x, ctx = torch.randn(B, F * H * W, 64), torch.randn(B, 5, 64)
    temb = torch.randn(B, F * H * W, 6, 64)
    cos, sin = wan.WanRotaryPosEmbed(16, (1, 1, 1), 64)(torch.zeros(B, 8, F, H, W))
    expected = ref(x, ctx, temb, (cos, sin))
    got = mine(x, temb, rope_angles_3d(grid_positions(F, H, W), 16), ctx)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_video_dit_loads_and_matches_wan_transformer(wan):
    torch.manual_seed(0)
    ref = wan.WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4,
                                    out_channels=4, text_dim=8, freq_dim=32, ffn_dim=64, num_layers=2,
                                    cross_attn_norm=True, rope_max_seq_len=64).eval()
    mine = VideoDiT(4, 32, 64, 2, 2, 16, (1, 2, 2), context_dim=8, freq_dim=32).eval()
    mine.load_state_dict(ref.state_dict(), strict=True)
    B, F, h, w = 2, 3, 4, 6
    lat = torch.randn(B, 4, F, h, w)
    t = torch.rand(B, F)
    ctx = torch.randn(B, 7, 8)
    per_tok = t.repeat_interleave((h // 2) * (w // 2), 1)
    expected = ref(lat, per_tok * 1000, ctx, return_dict=False)[0]
    x = mine.tokens(lat.permute(0, 2, 1, 3, 4)[:, :, None])
    temb, mod = mine.condition_embedder(per_tok)
    grid = mine.grid(lat.permute(0, 2, 1, 3, 4)[:, :, None])
    rope = mine.rope(grid)
    c = mine.condition_embedder.text(ctx)
    for blk in mine.blocks:
        x = blk(x, mod, rope, c)
    got = mine.unpatchify(x, temb, grid, views=1)[:, :, 0].permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_rope_fractional_positions_interpolate():
    a = rope_angles_1d(torch.tensor([0.0, 0.25, 1.0]), 8)
    torch.testing.assert_close(a[1], 0.25 * a[2])
    assert rope_angles_3d(torch.zeros(5, 3), 128).shape == (5, 64)
    with pytest.raises(ValueError, match="even"):
        rope_angles_3d(torch.zeros(1, 3), 7)


def groups_ffc():
    return [TokenGroup("video.cond", 2, "video", True, torch.tensor([0, 0])),
            TokenGroup("video.future", 4, "video", False, torch.tensor([1, 1, 2, 2])),
            TokenGroup("action", 3, "action", False, torch.arange(3))]


def test_first_frame_causal_mask_group_by_group():
    m = MaskRules(FIRST_FRAME_CAUSAL).build(groups_ffc())
    cond, fut, act = slice(0, 2), slice(2, 6), slice(6, 9)
    assert m[cond, cond].all() and not m[cond, fut].any() and not m[cond, act].any()
    assert m[fut, cond].all() and m[fut, fut].all() and not m[fut, act].any()
    assert m[act, act].all() and m[act, cond].all() and not m[act, fut].any()


def test_ordered_rules_and_later_rules_override():
    g = [TokenGroup("clean", 3, "a", True, torch.arange(3)), TokenGroup("noisy", 3, "a", False, torch.arange(3))]
    m = MaskRules({"clean -> clean": "causal", "noisy -> noisy": "same", "noisy -> clean": "strict"}).build(g)
    assert torch.equal(m[:3, :3], torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    assert torch.equal(m[3:, 3:], torch.eye(3, dtype=torch.bool))
    assert torch.equal(m[3:, :3], torch.tril(torch.ones(3, 3, dtype=torch.bool), -1))
    assert not m[:3, 3:].any()
    over = MaskRules({"* -> *": "all", "noisy -> clean": "none"}).build(g)
    assert over[:3].all() and not over[3:, :3].any()


def test_mask_rule_errors():
    with pytest.raises(ValueError, match="query_group -> key_group"):
        MaskRules({"video": "all"})
    with pytest.raises(ValueError, match="kinds are"):
        MaskRules({"a -> b": "sometimes"})


def test_closed_subset_excludes_tokens_that_see_changing_ones():
    m = MaskRules(FIRST_FRAME_CAUSAL).build(groups_ffc())
    fixed = torch.tensor([True] * 6 + [False] * 3)  # video fixed, actions change
    assert closed_subset(m, fixed).tolist() == [True] * 6 + [False] * 3  # all video only sees video
    joint = MaskRules({**FIRST_FRAME_CAUSAL, "video.future -> action": "all"}).build(groups_ffc())
    assert closed_subset(joint, fixed).tolist() == [True] * 2 + [False] * 7


def _sets(torch_seed=0, B=2, D=16, heads=2, hd=8, layers=3):
    torch.manual_seed(torch_seed)
    blocks_v = torch.nn.ModuleList([DiTBlock(D, 32, heads, hd) for _ in range(layers)])
    blocks_a = torch.nn.ModuleList([DiTBlock(8, 16, heads, hd) for _ in range(layers)])
    groups = groups_ffc()
    v = TokenSet(torch.randn(B, 6, D), torch.randn(B, 6, 6, D), rope_angles_1d(torch.arange(6.0), hd), blocks_v,
                 groups[:2], context=torch.randn(B, 3, D))
    a = TokenSet(torch.randn(B, 3, 8), torch.randn(B, 3, 6, 8), rope_angles_1d(torch.arange(3.0), hd), blocks_a,
                 groups[2:], context=torch.randn(B, 3, 8))
    return [v, a], layers


def test_cached_attention_equals_uncached():
    sets, layers = _sets()
    groups = assign_indices(sets)
    mask = MaskRules(FIRST_FRAME_CAUSAL).build(groups)
    full = run_layers(sets, mask, layers)
    fixed = torch.tensor([g.cond for g in groups for _ in range(g.size)])
    keep = closed_subset(mask, fixed)
    cache = KVCache()
    run_layers([s.select(keep[s.index]) for s in sets if keep[s.index].any()], mask, layers, record=cache)
    assert len(cache) == layers and cache.num_tokens == 2
    live = [s.select(~keep[s.index]) for s in sets]
    out = run_layers(live, mask, layers, cache=cache)
    torch.testing.assert_close(out[0], full[0][:, 2:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], full[1], atol=1e-5, rtol=1e-5)


def test_kv_cache_drop_keeps_selected_tokens():
    c = KVCache()
    c.append(0, torch.ones(1, 3, 2, 4), torch.ones(1, 3, 2, 4), torch.tensor([0, 1, 2]))
    c.append(0, torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4), torch.tensor([5]))
    c.drop(torch.tensor([1, 2, 5]))
    assert c.index[0].tolist() == [1, 2, 5] and c.keys[0].shape[1] == 3


def test_experts_joining_late_see_earlier_tokens():
    sets, layers = _sets()
    sets[1].first_layer, sets[1].blocks = 1, sets[1].blocks[:2]
    groups = assign_indices(sets)
    mask = MaskRules(FIRST_FRAME_CAUSAL).build(groups)
    out = run_layers(sets, mask, layers)
    assert out[1].shape == (2, 3, 8) and torch.isfinite(out[1]).all()


def test_flow_matching_target_and_interpolation():
    x0, eps = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    t = torch.rand(3, 4)
    zt = interpolate(x0, eps, t)
    torch.testing.assert_close(zt, (1 - t[..., None]) * x0 + t[..., None] * eps)
    torch.testing.assert_close(interpolate(x0, eps, torch.zeros(3, 4)), x0)
    # following the true velocity from z_t for time t lands on x0
    torch.testing.assert_close(zt - t[..., None] * velocity_target(x0, eps), x0, atol=1e-6, rtol=1e-6)


def test_flow_loss_masks_units():
    x0, eps = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    pred = torch.ones(2, 3, 4)
    pred[:, 0] = 100.0  # wrong on a masked unit only
    mask = torch.tensor([[False, True, True], [False, True, True]])
    assert float(flow_loss(pred, x0, eps, mask)) == 0.0
    assert float(flow_loss(pred, x0, eps, torch.ones(2, 3, dtype=torch.bool))) > 1000


def test_shift_and_samplers_distributions():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(100_000, generator=g)
    t = sample_shifted_uniform((100_000,), 5.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(t, shift_time(u, 5.0))
    assert 0 <= float(t.min()) and float(t.max()) <= 1 and float(t.mean()) > 0.6  # shift pushes towards noise
    ln = sample_logit_normal((100_000,), 1.0, 0.0, 1.0, torch.Generator().manual_seed(1))
    assert abs(float(ln.median()) - 0.5) < 0.01


def test_bump_weight_is_normalised_on_the_training_grid():
    w = BumpWeight(5.0)
    grid = shift_time(torch.linspace(1, 0, 1001)[:-1], 5.0)
    assert abs(float(w(grid).mean()) - 1.0) < 1e-4
    assert float(w(torch.tensor(0.5))) > float(w(torch.tensor(0.99)))


@pytest.mark.parametrize("solver", ["euler", "unipc"])
def test_samplers_integrate_a_constant_velocity(solver):
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    s = FlowSampler(solver, 10, 5.0)
    x = eps.clone()
    for _ in s:
        x = s.step(eps - x0, x)
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=1e-4)
    assert float(s.sigmas[0]) == pytest.approx(1.0, abs=1e-5) and float(s.sigmas[-1]) == 0.0


def test_euler_grid_is_fast_wam_grid():
    s = FlowSampler("euler", 10, 5.0)
    torch.testing.assert_close(s.sigmas, shift_time(torch.linspace(1, 0, 11), 5.0), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="solver"):
        FlowSampler("heun")


def _requested(grid, steps, shift):
    """``phi(linspace(start, end, steps + 1)[:-1])``, then 0, in float64."""
    u = torch.linspace(grid[0], grid[1], steps + 1, dtype=torch.float64)[:-1]
    return torch.cat([shift_time(u, shift), torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("solver", ["euler", "unipc"])
@pytest.mark.parametrize("grid", [(0.999, 0.0), (0.8, 0.05), (1.0, 0.0)])
def test_grid_option_yields_the_requested_sigmas(solver, grid):
    from wamzoo.schedulers import FlowMatchingScheduler

    for steps, shift in ((1, 5.0), (10, 5.0), (50, 3.0)):
        want = _requested(grid, steps, shift)
        if solver == "unipc" and grid[0] == 1.0:
            want[0] -= 1e-6  # diffusers' UniPC keeps log(alpha) finite at t = 1
        for s in (FlowSampler(solver, steps, shift, grid=grid),
                  FlowMatchingScheduler(solver=solver, infer_shift=shift, infer_grid=list(grid)).sampler("a", steps)):
            assert s.grid == grid and len(s) == steps and s.sigmas.dtype == torch.float32
            torch.testing.assert_close(s.sigmas.double(), want, atol=2e-7, rtol=0)  # float32 rounding only
            assert list(s) == s.sigmas[:-1].tolist()
            for _ in range(2):  # reset() returns to the same grid
                x0, eps = torch.randn(4, 3), torch.randn(4, 3)
                x, times = eps * want[0].float() + x0 * (1 - want[0].float()), []
                for t in s:
                    times.append(s.t)
                    x = s.step(eps - x0, x)
                assert times == s.sigmas[:-1].tolist()
                torch.testing.assert_close(x, x0, atol=1e-4, rtol=1e-4)  # a straight path ends at the data
                s.reset()


@pytest.mark.parametrize("solver", ["euler", "unipc"])
def test_default_grid_is_diffusers_own(solver):
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    from wamzoo.samplers import GRIDS
    from wamzoo.schedulers import FlowMatchingScheduler

    assert FlowSampler(solver).grid == GRIDS[solver] and FlowMatchingScheduler(solver=solver).infer_grid is None
    for steps in (1, 10, 50):
        if solver == "unipc":
            ref = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                          use_flow_sigmas=True, flow_shift=5.0, solver_order=2)
            ref.set_timesteps(steps)  # diffusers' flow sigmas: phi(linspace(1, 1/1000, steps + 1)[:-1])
        else:
            ref = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0)
            ref.set_timesteps(sigmas=np.linspace(1, 0, steps + 1)[:-1].tolist())  # Fast-WAM's grid
        for s in (FlowSampler(solver, steps, 5.0), FlowMatchingScheduler(solver=solver).sampler("a", steps)):
            assert torch.equal(s.sigmas, ref.sigmas.float())
            assert torch.equal(s._diffusers().timesteps, ref.timesteps)


@pytest.mark.parametrize("grid", [[0.0, 1.0], [1.0, 1.0], [1.5, 0.0], [0.5, -0.1], [1.0], "ab", 0.5])
def test_grid_option_refuses_bad_end_points(grid):
    from wamzoo.schedulers import FlowMatchingScheduler

    with pytest.raises(ValueError, match=r"^grid must"):
        FlowSampler("unipc", 10, 5.0, grid=grid)
    with pytest.raises(ValueError, match=r"^infer_grid must"):
        FlowMatchingScheduler(solver="euler", infer_grid=grid)


def test_spatial_softmax_finds_a_bright_pixel():
    from wamzoo.nn.spatial_softmax import spatial_softmax
    maps = torch.zeros(1, 2, 5, 9)
    maps[0, 0, 1, 6] = 100.0  # row 1 of 5, column 6 of 9
    maps[0, 1, 4, 0] = 100.0
    xy = spatial_softmax(maps)
    torch.testing.assert_close(xy[0], torch.tensor([[-1 + 2 * 6 / 8, -1 + 2 * 1 / 4], [-1.0, 1.0]]))
    torch.testing.assert_close(spatial_softmax(torch.zeros(1, 1, 5, 9)), torch.zeros(1, 1, 2))  # flat: the centre


def test_keypoint_encoder_learns_where_a_dot_is():
    """Regressing a dot's position through the keypoint tokens converges fast: what the encoder is for."""
    from wamzoo.nn.spatial_softmax import KeypointEncoder
    torch.manual_seed(0)
    enc = KeypointEncoder(num_views=2, keypoints=4, dim=8, width=8)
    head = torch.nn.Linear(8 * 8, 2)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)

    def dots(n):
        pos = torch.randint(2, 30, (n, 2))
        frames = torch.zeros(n, 2, 3, 32, 32)
        for i, (r, c) in enumerate(pos.tolist()):
            frames[i, :, 0, r - 1:r + 2, c - 1:c + 2] = 1.0  # a red dot seen by both views
        return frames, pos.float() / 16 - 1

    losses = []
    for _ in range(150):
        frames, target = dots(32)
        loss = torch.nn.functional.mse_loss(head(enc(frames).flatten(1)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.1 * sum(losses[:10]) / 10, losses[::15]
    assert enc.convs[0].weight.grad.abs().sum() > 0 and enc.log_temperature.grad is not None
    with pytest.raises(ValueError, match="built for 2 views"):
        enc(torch.zeros(1, 3, 3, 32, 32))
