"""Asynchronous inference (actions after T_a steps, early stop), full 4D mode, save/load."""

import torch

from wamzoo.policy import WAMPolicy
from wamzoo_x_wam.inference import predict_4d


def _spy_steps(policy, monkeypatch):
    calls = []
    real = policy.coupling.step

    def step(wm, ae, streams, cond, active, ctx):
        calls.append((set(active), float(streams["action"].t.max()), float(streams["video"].t.max())))
        return real(wm, ae, streams, cond, active, ctx)

    monkeypatch.setattr(policy.coupling, "step", step)
    return calls


def test_async_inference_stops_actions_at_T_a_and_skips_depth(x_wam, rgbd_window, monkeypatch):
    policy, info = x_wam(overrides=["policy.scheduler.video_steps=8", "policy.scheduler.action_steps=3"])
    policy.eval()
    obs = rgbd_window(info, train=False)
    calls = _spy_steps(policy, monkeypatch)
    ran = []
    blk = policy.world_model.depth.blocks[0]
    real = blk.attention_inputs
    monkeypatch.setattr(blk, "attention_inputs", lambda *a, **k: ran.append(1) or real(*a, **k))
    early = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3 and not ran  # early stop: T_a = 3 evaluations, no depth branch
    assert all(a == {"video", "action", "state"} for a, _, _ in calls)
    calls.clear()
    out = predict_4d(policy, obs, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 8  # full mode: T_O = 8 evaluations
    # actions/state are stepped for T_a steps, then sit clean (t = 0) while the video continues
    assert [a for a, _, _ in calls[:3]] == [{"video", "action", "state"}] * 3
    assert all(a == {"video"} for a, _, _ in calls[3:7]) and calls[7][0] == {"video", "depth"}
    assert all(ta > 0 for _, ta, _ in calls[:3]) and all(ta == 0 for _, ta, _ in calls[3:])
    assert all(tv >= ta for _, ta, tv in calls)  # video never cleaner than actions, as in ANS training
    assert len(ran) == 1  # the depth branch ran once, at the last step
    # the actions finished at step T_a are exactly those of the early-stopped call
    assert torch.equal(out["action"], early["action"])
    assert torch.equal(out["streams"]["state"].x, early["streams"]["state"].x)
    B, F, V = obs.batch_size, info.n_future, info.num_views
    assert out["rgb"].shape == (B, F, V, 3, info.height, info.width)
    assert out["depth"].shape == (B, F, V, 1, info.height, info.width) and (out["depth"] > 0).all()
    assert len(out["points"]) == B and len(out["points"][0]) == F and out["points"][0][0].shape[1] == 3


def test_synchronous_inference_runs_all_steps(x_wam, rgbd_window, monkeypatch):
    policy, info = x_wam("sync")
    policy.eval()
    calls = _spy_steps(policy, monkeypatch)
    policy.predict_action(rgbd_window(info, train=False), generator=torch.Generator().manual_seed(0))
    assert len(calls) == 6 and all(ta == tv for _, ta, tv in calls)


def test_save_load_round_trip(x_wam, rgbd_window, tmp_path):
    policy, info = x_wam()
    policy.compute_loss(rgbd_window(info), generator=torch.Generator().manual_seed(0))[0].backward()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.01)  # weights a fresh build would not have
    policy.eval()
    folder = policy.save_pretrained(tmp_path / "x-wam")
    loaded = WAMPolicy.from_pretrained(str(folder))
    a, b = policy.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    obs = rgbd_window(info, train=False)
    x = policy.predict_action(obs, generator=torch.Generator().manual_seed(3))
    y = loaded.predict_action(obs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, y)
    d1 = predict_4d(policy, obs, generator=torch.Generator().manual_seed(3))["depth"]
    d2 = predict_4d(loaded, obs, generator=torch.Generator().manual_seed(3))["depth"]
    assert torch.equal(d1, d2)
