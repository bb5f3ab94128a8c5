"""Training: per-token timesteps, loss masking of the clean frame, lambda_video, IDM re-noising, a real run."""

import math

import pytest
import torch

import wamzoo.policy as policy_module
from wamzoo.interfaces import Stream
from wamzoo.nn.flow_matching import BumpWeight, shift_time
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.training import train
from wamzoo_fast_wam.idm import conditioning_copy
from wamzoo_fast_wam.masks import COND_VIDEO


def _loss(policy, batch, seed=0):
    return policy.compute_loss(batch, generator=torch.Generator().manual_seed(seed))


def _perturb_noise(monkeypatch, frame):
    """Make the noise of video ``frame`` differ from what the generator drew (changes its target only)."""
    real = policy_module.interpolate

    def noisy(x0, noise, t):
        if x0.ndim == 6:  # the video stream [B, U, V, C, h, w]; its `noise` is the stream's own tensor
            noise[:, frame] += 3.0
        return real(x0, noise, t)

    monkeypatch.setattr(policy_module, "interpolate", noisy)


@pytest.mark.parametrize("variant", ["default", "idm"])
def test_clean_current_frame_is_excluded_from_the_loss(fast_wam, monkeypatch, variant):
    policy, batch = fast_wam(variant)
    base, logs = _loss(policy, batch)
    with monkeypatch.context() as m:
        _perturb_noise(m, frame=0)  # the current frame sits at t = 0: input unchanged, target changed
        same, logs0 = _loss(policy, batch)
    assert logs0["loss/video"] == pytest.approx(logs["loss/video"], rel=1e-6)
    assert same.item() == pytest.approx(base.item(), rel=1e-6)
    with monkeypatch.context() as m:
        _perturb_noise(m, frame=1)  # control: a future frame's target does count
        _, logs1 = _loss(policy, batch)
    assert abs(logs1["loss/video"] - logs["loss/video"]) > 1e-3


def test_per_token_timesteps(fast_wam, monkeypatch):
    policy, batch = fast_wam("default")
    seen = {}
    real = policy.coupling.forward

    def spy(wm, ae, streams, cond):
        seen.update({k: s.t.clone() for k, s in streams.items()})
        return real(wm, ae, streams, cond)

    monkeypatch.setattr(policy.coupling, "forward", spy)
    _loss(policy, batch)
    video, action = seen["video"], seen["action"]
    assert torch.all(video[:, 0] == 0) and torch.all(video[:, 1:] > 0)  # current frame clean
    assert torch.all(video[:, 1:] == video[:, 1:2])  # one time per sample for the future frames
    assert torch.all(action == action[:, :1]) and not torch.equal(action[:, 0], video[:, 1])  # independent


def test_lambda_zero_leaves_the_video_head_without_gradient(fast_wam):
    head = lambda p: [p.world_model.dit.proj_out.weight, p.world_model.dit.scale_shift_table]  # noqa: E731
    policy, batch = fast_wam("novideo")
    loss0, logs0 = _loss(policy, batch)
    loss0.backward()
    assert "loss/video" not in logs0
    assert all(p.grad is None for p in head(policy))
    assert policy.world_model.dit.blocks[0].attn1.to_k.weight.grad is not None  # the current frame still counts
    # same weights with lambda_video = 1: the video head learns and the action loss is unchanged
    ref, _ = fast_wam("default")
    ref.load_state_dict(policy.state_dict())
    loss1, logs1 = _loss(ref, batch)
    loss1.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head(ref))
    assert logs1["loss/action"] == pytest.approx(logs0["loss/action"], rel=1e-5)


def test_bump_weight_and_logit_normal_option(fast_wam):
    policy, batch = fast_wam("default")
    assert policy.scheduler.sampling == "shifted-uniform" and policy.scheduler.loss_weighting == "bump"
    grid = shift_time(torch.linspace(1, 0, 1001, dtype=torch.float64)[:-1], 5.0)
    w = BumpWeight(5.0)(grid)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6) and w.min().item() == pytest.approx(0.0, abs=1e-6)
    ln, _ = fast_wam("default", ["policy.scheduler.sampling=logit-normal"])
    assert ln.scheduler.sampling == "logit-normal"
    loss, _ = _loss(ln, batch)
    assert math.isfinite(loss.item())


def test_idm_conditioning_video_is_renoised_half_the_time():
    B, U = 4000, 3
    x = torch.randn(B, U, 1, 2, 2, 2)
    cond = (torch.arange(U) < 1)[None].expand(B, -1)
    video = Stream(x=x, cond=cond)
    c = conditioning_copy(video, train=True, noise_prob=0.5, generator=torch.Generator().manual_seed(0))
    assert not c.denoised and not c.readout
    noisy = c.t[:, 1] > 0
    assert 0.45 < noisy.float().mean().item() < 0.55
    assert torch.all(c.t[:, 0] == 0) and torch.equal(c.x[:, 0], x[:, 0])  # the current frame stays clean
    assert torch.equal(c.x[~noisy], x[~noisy])  # the other half is the clean video
    assert torch.all(c.t[noisy, 1] == c.t[noisy, 2])  # one time per sample
    assert not torch.allclose(c.x[noisy][:, 1:], x[noisy][:, 1:])
    # t_c = phi(u), u ~ U(0, 1): the median of phi(u) is phi(0.5) = 5/6
    assert c.t[noisy, 1].median().item() == pytest.approx(5 / 6, abs=0.03)
    inference = conditioning_copy(video, train=False)
    assert torch.equal(inference.x, x) and torch.all(inference.t == 0)


def test_idm_training_keeps_the_conditioning_time(fast_wam, monkeypatch):
    policy, batch = fast_wam("idm")
    seen = {}
    real = policy.coupling.forward

    def spy(wm, ae, streams, cond):
        seen.update(t=streams[COND_VIDEO].t.clone(), x=streams[COND_VIDEO].x.clone(), x0=streams["video"].x0.clone())
        return real(wm, ae, streams, cond)

    monkeypatch.setattr(policy.coupling, "forward", spy)
    for seed in range(4):
        _loss(policy, batch, seed)
        noisy = seen["t"][:, 1] > 0
        assert torch.equal(seen["x"][~noisy], seen["x0"][~noisy])  # clean copies of the clean video
        if noisy.any():
            break
    assert noisy.any() and not noisy.all()


def test_tiny_recipe_trains_with_decreasing_loss(tmp_path):
    recipe = compose("fast-wam-tiny", ["trainer.max_steps=80", "trainer.log_every=5"])
    run = train(recipe, out_dir=tmp_path)
    rows = (run / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("train/loss")
    losses = [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]]
    assert len(losses) >= 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


@pytest.mark.parametrize("variant", ["default", "idm"])
def test_save_load_round_trip_gives_identical_actions(fast_wam, tmp_path, variant):
    policy, batch = fast_wam(variant)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    for seed in range(3):  # move the weights off their initialisation
        loss, _ = _loss(policy, batch, seed)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    obs = batch.observation()
    folder = policy.save_pretrained(tmp_path / variant)
    loaded = WAMPolicy.from_pretrained(str(folder))
    assert type(loaded.coupling).__name__ == "FastWAMCoupling" and loaded.coupling.variant == variant
    a = policy.predict_action(obs, generator=torch.Generator().manual_seed(5))
    b = loaded.predict_action(obs, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
