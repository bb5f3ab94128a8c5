"""The asynchronous runtime: chunks keep coming while the planner refreshes in the background, the
schedule (not thread timing) decides which context a chunk reads, and policies save and load."""

import threading
import time

import pytest
import torch

from wamzoo.policy import WAMPolicy


def _episode(policy, obs, calls: int, seed: int = 0) -> list[torch.Tensor]:
    policy.reset()
    return [policy.predict_action(obs, generator=torch.Generator().manual_seed(seed + i)) for i in range(calls)]


def test_chunks_are_produced_while_the_planner_refreshes(aha_wam, monkeypatch):
    import wamzoo_aha_wam.coupling

    policy, batch = aha_wam(overrides=["policy.action_expert.infer_branch=history"], batch_size=1)
    policy.eval()
    rt = policy.coupling.runtime
    events, slow = [], threading.Event()
    real = wamzoo_aha_wam.coupling.refresh

    def slow_refresh(world_model, memory, frame, cond, between_layers=None):
        background = threading.current_thread() is not threading.main_thread()
        events.append(("planner start", background, time.perf_counter()))
        if background:
            slow.wait(5.0)  # hold the refresh until the executor has produced a chunk meanwhile
        out = real(world_model, memory, frame, cond, between_layers)
        events.append(("planner end", background, time.perf_counter()))
        return out

    monkeypatch.setattr(wamzoo_aha_wam.coupling, "refresh", slow_refresh)
    obs = batch.observation()
    policy.reset()
    k = rt.refresh_every
    for i in range(2 * k):
        policy.predict_action(obs, generator=torch.Generator().manual_seed(i))
        events.append(("chunk", i, time.perf_counter()))
        if i == k + 1:
            slow.set()
    policy.predict_action(obs, generator=torch.Generator().manual_seed(9))  # adopts the background refresh
    started = next(e[2] for e in events if e[:2] == ("planner start", True))
    ended = next(e[2] for e in events if e[:2] == ("planner end", True))
    chunks_meanwhile = [e[1] for e in events if e[0] == "chunk" and started < e[2] < ended]
    assert chunks_meanwhile == list(range(k, 2 * k)), events  # chunks kept coming while the planner ran
    assert rt.window_start == k and rt.history.chunks == k + 1  # rebuilt from the k chunks since its frame
    stats = policy.coupling.timings()
    assert stats["chunks"] == 2 * k + 1 and stats["refreshes"] == 2 and stats["executor_ms"] > 0


@pytest.mark.parametrize("sampler", ["prior", "history"])
def test_background_refresh_gives_the_schedules_actions(aha_wam, sampler):
    policy, batch = aha_wam(overrides=[f"policy.action_expert.infer_branch={sampler}"], batch_size=1)
    policy.eval()
    obs = batch.observation()
    threaded = _episode(policy, obs, 7)
    policy.reset()
    settled = []  # as in `wamzoo bench latency`: the background refresh finishes between calls
    for i in range(7):
        settled.append(policy.predict_action(obs, generator=torch.Generator().manual_seed(i)))
        policy.coupling.wait_idle()
        assert not any(t.name == "aha-wam-planner" for t in threading.enumerate())
    policy.coupling.runtime.background = False
    inline = _episode(policy, obs, 7)
    for a, b in zip(settled, inline):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    for a, b in zip(threaded, inline):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    policy.coupling.runtime.pipelined = False
    sync = _episode(policy, obs, 7)
    k = policy.coupling.runtime.refresh_every
    assert all(torch.equal(a, b) for a, b in zip(inline[:k], sync[:k]))  # both start from the first frame's context
    assert not any(torch.allclose(a, b) for a, b in zip(inline[k:], sync[k:]))  # then sync reads a newer one


def test_save_and_load_round_trip(aha_wam, tmp_path):
    policy, batch = aha_wam(batch_size=1)
    policy.eval()
    folder = policy.save_pretrained(tmp_path / "aha")
    loaded = WAMPolicy.from_pretrained(str(folder))
    obs = batch.observation()
    for a, b in zip(_episode(policy, obs, 5), _episode(loaded, obs, 5)):
        assert torch.equal(a, b)
    assert type(loaded.coupling).__name__ == "AHAWAMCoupling" and loaded.action_expert.ovcr is not None
    assert "returns **one chunk**" in (folder / "README.md").read_text()  # the plugin's card fragment


@pytest.mark.parametrize("sampler", ["prior", "history"])
def test_steps_reuse_the_chunks_cross_attention_keys_values(aha_wam, sampler, monkeypatch):
    policy, batch = aha_wam(overrides=[f"policy.action_expert.infer_branch={sampler}"], batch_size=1)
    policy.eval()
    obs = batch.observation()
    computed = []
    for block in policy.action_expert.dit.blocks:  # count the executor's cross-attention K/V projections
        monkeypatch.setattr(block.attn2, "kv", lambda x, kv=block.attn2.kv: computed.append(1) or kv(x))
    cached = _episode(policy, obs, 5)
    per_call = len(computed) / 5
    monkeypatch.setattr("wamzoo.nn.mot._context_kv", lambda s, layer: None)  # recompute at every step
    computed.clear()
    fresh = _episode(policy, obs, 5)
    steps = policy.scheduler.plan()[0].length
    layers = len(policy.action_expert.dit.blocks)
    assert len(computed) / 5 - per_call == (steps - 1) * layers  # once per call instead of once per step
    for a, b in zip(cached, fresh):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
