"""Asynchronous Noise Sampling: ordering, marginals (fixed-seed statistical tests), shift, ablations."""

import math

import pytest
import torch

from wamzoo.interfaces import Stream
from wamzoo.nn.flow_matching import flow_loss
from wamzoo_x_wam.ans import XWAMScheduler, sample_ans, sample_beta

N = 20_000
KS_1PCT = 1.63 / math.sqrt(N)  # Kolmogorov-Smirnov critical value at the 1% level


def ks(samples: torch.Tensor, cdf) -> float:
    x = samples.double().sort().values
    n = len(x)
    F = cdf(x)
    hi = torch.arange(1, n + 1, dtype=torch.float64) / n - F
    lo = F - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(hi, lo).max())


def unshift(t: torch.Tensor, s: float = 5.0) -> torch.Tensor:
    """Inverse of ``phi(u) = s u / (1 + (s - 1) u)``."""
    return t / (s - (s - 1) * t)


def streams(B: int) -> dict[str, Stream]:
    f = torch.zeros(B, 3, dtype=torch.bool)
    f[:, 0] = True
    s = torch.zeros(B, 5, dtype=torch.bool)
    s[:, 0] = True
    return {"video": Stream(torch.zeros(B, 3, 1), f, group="obs"),
            "action": Stream(torch.zeros(B, 8, 2), torch.zeros(B, 8, dtype=torch.bool), group="action"),
            "state": Stream(torch.zeros(B, 5, 2), s, group="action")}


def draw(schedule: str, seed: int = 0, **kw):
    sched = XWAMScheduler(schedule=schedule, **kw)
    st = streams(N)
    sched.sample_timesteps(st, torch.Generator().manual_seed(seed))
    return sched, st


def test_beta_sampler_shape():
    b = sample_beta((N,), 1.5, 1.0, torch.Generator().manual_seed(1))
    assert ks(b, lambda x: x.clamp(0, 1) ** 1.5) < KS_1PCT
    g = sample_beta((N,), 2.0, 3.0, torch.Generator().manual_seed(2))
    assert abs(float(g.mean()) - 0.4) < 0.01  # gamma path: mean a / (a + b)


def test_ans_orders_times_and_has_the_stated_marginals():
    _, st = draw("ans")
    t_obs, t_a = st["video"].t[:, 1], st["action"].t[:, 0]
    assert (t_obs >= t_a).all()
    # state shares the action time; the observed frame and s_0 are clean
    assert torch.equal(st["state"].t[:, 1:], t_a[:, None].expand(-1, 4))
    assert (st["video"].t[:, 0] == 0).all() and (st["state"].t[:, 0] == 0).all()
    clean = t_a == 0
    p = float(clean.float().mean())
    assert abs(p - 0.5) < 4 * math.sqrt(0.25 / N), p  # the clean-action case has probability p = 0.5
    # clean case: u_O ~ U(0, 1) before the shift
    u_obs, u_a = unshift(t_obs), unshift(t_a)
    assert ks(u_obs[clean], lambda x: x.clamp(0, 1)) < 1.63 / math.sqrt(int(clean.sum()))
    # noisy case: u_a ~ U(0, 1) and (u_O - u_a) / (1 - u_a) ~ Beta(1.5, 1) (CDF x^1.5), shift applied after
    noisy = ~clean
    n = int(noisy.sum())
    assert ks(u_a[noisy], lambda x: x.clamp(0, 1)) < 1.63 / math.sqrt(n)
    frac = (u_obs[noisy] - u_a[noisy]) / (1 - u_a[noisy])
    assert ks(frac, lambda x: x.clamp(0, 1) ** 1.5) < 1.63 / math.sqrt(n)
    assert ks(frac, lambda x: x.clamp(0, 1)) > 5 / math.sqrt(n)  # and visibly not uniform
    assert abs(float(frac.mean()) - 0.6) < 0.01  # Beta(1.5, 1) mean


def test_coupling_before_the_shift_differs_from_after():
    """Coupling the *shifted* times would move the offset's distribution: the test above would see it."""
    g = torch.Generator().manual_seed(3)
    u_obs, u_a, clean = sample_ans(N, generator=g)
    s = 5.0
    phi = lambda u: s * u / (1 + (s - 1) * u)  # noqa: E731
    t_a = phi(u_a[~clean])
    wrong = t_a + (1 - t_a) * sample_beta((int((~clean).sum()),), 1.5, 1.0, g)
    frac = (unshift(wrong) - u_a[~clean]) / (1 - u_a[~clean])
    assert ks(frac, lambda x: x.clamp(0, 1) ** 1.5) > 5 / math.sqrt(len(frac))


def test_decoupled_and_synchronous_schedules():
    _, st = draw("decoupled", seed=4)
    u_obs, u_a = unshift(st["video"].t[:, 1]), unshift(st["action"].t[:, 0])
    assert ks(u_obs, lambda x: x.clamp(0, 1)) < KS_1PCT and ks(u_a, lambda x: x.clamp(0, 1)) < KS_1PCT
    assert abs(float((u_obs < u_a).float().mean()) - 0.5) < 0.02  # independent: either order
    assert abs(float(torch.corrcoef(torch.stack([u_obs, u_a]))[0, 1])) < 0.03
    _, st = draw("synchronous", seed=5)
    assert torch.equal(st["video"].t[:, 1], st["action"].t[:, 0])
    assert ks(unshift(st["action"].t[:, 0]), lambda x: x.clamp(0, 1)) < KS_1PCT


def test_loss_weight_masks_the_clean_action_case_and_keeps_the_codes_mean():
    sched = XWAMScheduler()
    t = torch.tensor([[0.0] * 4, [0.3] * 4, [0.0] * 4, [0.8] * 4])  # samples 0 and 2: clean action
    pred, x0, noise = torch.randn(4, 4, 2), torch.randn(4, 4, 2), torch.randn(4, 4, 2)
    mask = torch.ones(4, 4, dtype=torch.bool)
    loss = flow_loss(pred, x0, noise, mask, sched.loss_weight("action", t))
    err = ((pred - (noise - x0)) ** 2).mean(-1)
    torch.testing.assert_close(loss, err[[1, 3]].mean())  # sum(err * mask) / sum(mask) over trained samples
    assert sched.loss_weight("action", torch.zeros(3, 4)).sum() == 0


def test_plan_early_stop_and_full():
    sched = XWAMScheduler(video_steps=50, action_steps=10)
    (early,) = sched.plan()
    assert early.steps == {"video": 50, "action": 10, "state": 10} and early.length == 10
    (full,) = sched.plan(early_stop=False)
    assert full.length == 50
    (sync,) = XWAMScheduler(schedule="synchronous", action_steps=50).plan()
    assert sync.length == 50 and sync.stop is None
    assert sched.sampler("video", 50).sigmas[1] > sched.sampler("action", 10).sigmas[1]  # t_O >= t_a at inference


def test_bad_arguments():
    with pytest.raises(ValueError, match="schedule"):
        XWAMScheduler(schedule="nope")
    with pytest.raises(ValueError, match="chunk"):
        XWAMScheduler().draw_groups({"obs": (2, 3), "action": (2,)}, None, "cpu")
