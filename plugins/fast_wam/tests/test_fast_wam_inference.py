"""Inference: skip imagination (prefill + Euler action steps), Joint and IDM; cached == uncached."""

import pytest
import torch

from wamzoo.nn.flow_matching import shift_time
from wamzoo_fast_wam.masks import COND_VIDEO


def _count_tokens(monkeypatch, blocks):
    """Record the number of tokens each call of ``blocks[0]`` processes."""
    calls = []
    real = blocks[0].attention_inputs

    def spy(x, *a, **k):
        calls.append(x.shape[1])
        return real(x, *a, **k)

    monkeypatch.setattr(blocks[0], "attention_inputs", spy)
    return calls


def _uncached(policy, obs, seed):
    real = policy.coupling.prefill
    policy.coupling.prefill = lambda *a, **k: None
    try:
        return policy.predict(obs, generator=torch.Generator().manual_seed(seed))
    finally:
        policy.coupling.prefill = real


@pytest.mark.parametrize("variant", ["default", "joint", "idm"])
def test_cached_equals_uncached(fast_wam, variant):
    policy, batch = fast_wam(variant)
    policy.eval()
    obs = batch.observation()
    cached = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    ref = _uncached(policy, obs, 0)
    torch.testing.assert_close(cached["action"], ref["action"], atol=1e-5, rtol=1e-5)
    if variant != "default":
        v, r = cached["streams"]["video"].x, ref["streams"]["video"].x
        torch.testing.assert_close(v, r, atol=1e-5, rtol=1e-5)


def test_skip_imagination_one_video_pass_then_ten_action_steps(fast_wam, monkeypatch):
    policy, batch = fast_wam("default")
    policy.eval()
    obs = batch.observation()
    video = _count_tokens(monkeypatch, policy.world_model.dit.blocks)
    action = _count_tokens(monkeypatch, policy.action_expert.dit.blocks)
    out = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    per_frame = (obs.rgb.shape[-1] // 4 // 2) * (obs.rgb.shape[-2] // 4 // 2)  # codec patch 4, DiT patch 2
    assert video == [per_frame]  # one pass over the clean current frame only: no future video
    assert action == [policy.action_expert.horizon] * 10  # ten Euler steps, action tokens only
    assert out["streams"]["video"].units == 1
    assert out["action"].shape == batch.action.shape


def test_action_steps_walk_the_shifted_grid(fast_wam, monkeypatch):
    policy, batch = fast_wam("default")
    policy.eval()
    seen = []
    real = policy.coupling.step

    def spy(wm, ae, streams, cond, active, ctx):
        seen.append(float(streams["action"].t[0, 0]))
        return real(wm, ae, streams, cond, active, ctx)

    monkeypatch.setattr(policy.coupling, "step", spy)
    policy.predict(batch.observation(), generator=torch.Generator().manual_seed(0))
    grid = shift_time(torch.linspace(1, 0, 11, dtype=torch.float64), 5.0)[:-1]
    torch.testing.assert_close(torch.tensor(seen, dtype=torch.float64), grid, atol=1e-6, rtol=0)


def test_idm_generates_video_first_then_actions_read_it(fast_wam, monkeypatch):
    policy, batch = fast_wam("idm")
    policy.eval()
    obs = batch.observation()
    video = _count_tokens(monkeypatch, policy.world_model.dit.blocks)
    action = _count_tokens(monkeypatch, policy.action_expert.dit.blocks)
    out = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    streams = out["streams"]
    frames = streams["video"].units
    per_frame = streams["video"].x[0, 0, 0, 0].numel() // 4
    # phase 1: prefill the current frame, 10 steps over the future frames;
    # phase 2: one pass over the generated (conditioning) video, then 10 action-only steps
    assert video == [per_frame] + [(frames - 1) * per_frame] * 10 + [frames * per_frame]
    assert action == [policy.action_expert.horizon] * 10
    assert torch.equal(streams[COND_VIDEO].x, streams["video"].x)
    assert not torch.equal(streams["video"].x[:, 1:], torch.zeros_like(streams["video"].x[:, 1:]))
    assert torch.equal(streams["video"].x[:, :1], policy.encode(obs)["rgb"][:, :1])  # current frame kept


def test_idm_actions_depend_only_on_the_conditioning_video(fast_wam):
    policy, batch = fast_wam("idm")
    policy.eval()
    with torch.no_grad():
        streams, cond = policy.build_streams(batch.observation(), train=False)
        policy.coupling.prepare(streams, train=False)
        for s in streams.values():
            s.x = torch.randn_like(s.x)
            s.t = torch.full(s.cond.shape, 0.5)
        ctx = policy.coupling.prefill(policy.world_model, policy.action_expert, streams, cond, {"action"})
        a = policy.coupling.step(policy.world_model, policy.action_expert, streams, cond, {"action"}, ctx)["action"]
        streams["video"].t = torch.full(streams["video"].cond.shape, 0.9)  # changes the noisy-video tokens only
        b = policy.coupling(policy.world_model, policy.action_expert, streams, cond)["action"]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        streams["video"].x = streams["video"].x + 1.0  # the conditioning copy follows the video
        c = policy.coupling.step(policy.world_model, policy.action_expert, streams, cond, {"action"}, None)["action"]
        assert (c - a).abs().max() > 1e-3


def test_joint_denoises_video_and_actions_together(fast_wam, monkeypatch):
    policy, batch = fast_wam("joint")
    policy.eval()
    obs = batch.observation()
    video = _count_tokens(monkeypatch, policy.world_model.dit.blocks)
    action = _count_tokens(monkeypatch, policy.action_expert.dit.blocks)
    out = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    frames = out["streams"]["video"].units
    per_frame = out["streams"]["video"].x[0, 0, 0, 0].numel() // 4
    assert video == [per_frame] + [(frames - 1) * per_frame] * 10
    assert action == [policy.action_expert.horizon] * 10
