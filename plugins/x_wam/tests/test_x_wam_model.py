"""X-WAM's sequence, depth branch and losses on tiny policies."""

import pytest
import torch

from wamzoo_x_wam.action import XWAMActionExpert
from wamzoo_x_wam.depth_branch import depth_to_pixels, pixels_to_depth


def _streams(policy, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    streams, cond = policy.build_streams(batch, train=True)
    policy.scheduler.sample_timesteps(streams, g)
    for s in streams.values():
        if s.denoised:
            s.x = (1 - s.t.reshape(*s.t.shape, *[1] * (s.x.ndim - 2))) * s.x + torch.randn(s.x.shape, generator=g)
    return streams, cond


def test_one_sequence_with_views_as_separate_groups_and_fractional_action_positions(x_wam, rgbd_window):
    policy, info = x_wam()
    batch = rgbd_window(info)
    streams, cond = _streams(policy, batch)
    mask, groups = policy.coupling.attention_mask(policy.world_model, policy.action_expert, streams, cond)
    names = [g.name for g in groups]
    assert names == ["video.cond.v0", "video.future.v0", "video.cond.v1", "video.future.v1", "depth.v0", "depth.v1",
                     "action", "state.cond", "state.future"]
    main = torch.cat([torch.full((g.size,), g.stream != "depth") for g in groups])
    assert mask[main][:, main].all()  # full attention over video, action and state
    assert not mask[main][:, ~main].any() and mask[~main].all()  # nothing reads depth; depth reads everything
    # the state and action tokens run through the video DiT's blocks: the expert owns no block
    assert not any("blocks" in n for n, _ in policy.action_expert.named_parameters())


def test_rope_positions_follow_the_papers_rates():
    # paper: 8 future frames at stride 4, Wan VAE 4x in time (2 future latent frames), K = 32 actions
    e = XWAMActionExpert(14, 16, 32, dim=8, n_obs=1, n_future=2, future_frames=8, frame_stride=4)
    actions, states = e.positions()
    torch.testing.assert_close(actions, torch.arange(32, dtype=torch.float64) / 16)  # the code's scale = 4 * 4
    torch.testing.assert_close(states, torch.arange(9, dtype=torch.float64) / 4)
    assert e.state_units == 9


def test_main_branch_is_bit_identical_with_and_without_the_depth_branch(x_wam, rgbd_window):
    policy, info = x_wam()
    with torch.no_grad():  # a depth branch that differs from the main blocks, to be sure it is really run
        for p in policy.world_model.depth.parameters():
            p.add_(0.1 * torch.randn_like(p))
    batch = rgbd_window(info)
    streams, cond = _streams(policy, batch)
    args = (policy.world_model, policy.action_expert)
    with_depth = policy.coupling(*args, streams, cond)
    cond.loss_weights = {"depth": 0.0}
    without = policy.coupling(*args, streams, cond)
    assert set(with_depth) == {"video", "action", "state", "depth"} and set(without) == {"video", "action", "state"}
    for k in without:
        assert torch.equal(with_depth[k], without[k]), k
    no_stream = {k: v for k, v in streams.items() if k != "depth"}
    alone = policy.coupling(*args, no_stream, cond)
    for k in alone:
        assert torch.equal(alone[k], without[k]), k


def test_depth_branch_starts_from_the_copied_blocks_and_trains_the_trunk(x_wam, rgbd_window):
    policy, info = x_wam()
    wm = policy.world_model
    L, M = len(wm.dit.blocks), wm.depth.num_layers
    for mine, theirs in zip(wm.depth.blocks, wm.dit.blocks[L - M:]):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert mine.attn1.to_q.weight is not theirs.attn1.to_q.weight  # copies, not shared
    streams, cond = _streams(policy, rgbd_window(info))
    out = policy.coupling(wm, policy.action_expert, streams, cond)
    loss = wm.extra_losses(None, streams, out, cond)["depth"]
    loss.backward()
    assert wm.depth.blocks[0].attn1.to_q.weight.grad.abs().sum() > 0
    assert wm.dit.blocks[0].attn1.to_q.weight.grad.abs().sum() > 0  # forked, not detached (as the code)
    assert wm.dit.blocks[-1].attn1.to_q.weight.grad is None  # the main blocks after the fork do not feed depth's
    # ... except through their keys/values: depth queries read the main block's same-layer K/V
    assert wm.dit.blocks[-1].attn1.to_k.weight.grad is not None


def test_loss_terms_and_masking_per_ans_case(x_wam, rgbd_window):
    batch_ = None
    for p_clean, trained in ((1.0, False), (0.0, True)):
        policy, info = x_wam(overrides=[f"policy.scheduler.p_clean={p_clean}"])
        batch_ = rgbd_window(info, batch_size=3)
        loss, logs = policy.compute_loss(batch_, generator=torch.Generator().manual_seed(0))
        assert set(logs) == {"loss", "loss/video", "loss/action", "loss/state", "loss/depth"}
        assert logs["loss/video"] > 0 and logs["loss/depth"] > 0
        if trained:
            assert logs["loss/action"] > 0 and logs["loss/state"] > 0
        else:  # action clean (t_a = 0): action and state losses masked, nothing reaches their decoders
            assert logs["loss/action"] == 0 and logs["loss/state"] == 0
            loss.backward()
            g = policy.action_expert.action_decoder[2].weight.grad
            assert g is None or g.abs().sum() == 0
    # lambda weights: L = L_O + l_s L_s + l_a L_a + l_D L_D
    policy, info = x_wam(overrides=["policy.loss_weights.state=0.5", "policy.loss_weights.action=2.0",
                                    "policy.loss_weights.depth=0.25", "policy.scheduler.p_clean=0.0"])
    loss, logs = policy.compute_loss(rgbd_window(info), generator=torch.Generator().manual_seed(0))
    expect = logs["loss/video"] + 2.0 * logs["loss/action"] + 0.5 * logs["loss/state"] + 0.25 * logs["loss/depth"]
    assert abs(logs["loss"] - expect) < 1e-5


def test_zero_depth_weight_skips_the_branch(x_wam, rgbd_window, monkeypatch):
    policy, info = x_wam(overrides=["policy.loss_weights.depth=0.0"])
    ran = []
    blk = policy.world_model.depth.blocks[0]
    real = blk.attention_inputs
    monkeypatch.setattr(blk, "attention_inputs", lambda *a, **k: ran.append(1) or real(*a, **k))
    _, logs = policy.compute_loss(rgbd_window(info), generator=torch.Generator().manual_seed(0))
    assert "loss/depth" not in logs and not ran


def test_training_reduces_every_loss(x_wam, rgbd_window):
    policy, info = x_wam(overrides=["policy.scheduler.p_clean=0.0"])
    batch = rgbd_window(info, batch_size=4)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    first = last = None
    for i in range(30):
        loss, logs = policy.compute_loss(batch, generator=torch.Generator().manual_seed(i % 3))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or logs
        last = logs
    for k in ("loss/video", "loss/action", "loss/state", "loss/depth"):
        assert last[k] < first[k], (k, first[k], last[k])


def test_depth_pixels_round_trip_inverse_depth():
    d = torch.tensor([0.5, 0.8, 1.6, 113.0]).reshape(4, 1, 1, 1)
    px = depth_to_pixels(d, near=0.5)
    assert px.shape == (4, 3, 1, 1)
    torch.testing.assert_close(px[:, 0].flatten(), 0.5 / d.flatten())  # inverse depth
    torch.testing.assert_close(pixels_to_depth(px, near=0.5), d, rtol=1e-5, atol=1e-5)


def test_future_states_are_required_or_skipped_with_a_warning(x_wam, rgbd_window):
    from wamzoo_x_wam import action

    action._WARNED.clear()
    policy, info = x_wam()
    batch = rgbd_window(info)
    batch.future_state = None
    with pytest.warns(UserWarning, match="future_state"):
        _, logs = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    assert logs["loss/state"] == 0


def test_gradient_checkpointing_gives_the_same_gradients(x_wam, rgbd_window):
    grads = []
    for ckpt in (False, True):
        policy, info = x_wam(overrides=[f"policy.coupling.grad_checkpoint={str(ckpt).lower()}",
                                        "policy.scheduler.p_clean=0.0"])
        policy.train()
        loss, _ = policy.compute_loss(rgbd_window(info), generator=torch.Generator().manual_seed(0))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-5)
