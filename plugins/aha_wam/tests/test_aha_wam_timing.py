"""Timings: ``wamzoo bench latency`` reports the executor and the amortised time per chunk; the
evaluator reports the executor's and the planner's rates separately."""

import io

import numpy as np
import pytest
import torch
from rich.console import Console

from wamzoo.bench import latency
from wamzoo.errors import WamzooError
from wamzoo.evaluate import EpisodeResult, PolicyAgent, print_report, report


def test_bench_reports_executor_planner_and_amortised_latency(tmp_path):
    rows = latency(["tiny-mot", "aha-wam-tiny"], repeats=6, warmup=1, json_path=str(tmp_path / "lat.json"))
    base, aha = rows
    assert base["extra_metrics"] == [] and "executor_ms" not in base
    for k in ("executor_ms", "planner_ms", "amortised_ms"):
        assert aha[k] > 0 and abs(aha[f"first_over_{k}"] - base["median_ms"] / aha[k]) < 1e-9
    assert aha["refresh_every"] == 2
    assert aha["amortised_ms"] > aha["executor_ms"] * 0.5  # the executor's mean plus half a refresh per chunk
    assert "executor_ms" in (tmp_path / "lat.json").read_text()
    # the executor's call: OVCR edits the cached context in the prefill, then the denoising steps
    assert aha["part_prefill_ms"] > 0 and aha["part_denoise_ms"] > 0
    assert aha["part_prefill_ms"] + aha["part_denoise_ms"] < aha["executor_ms"] * 1.5


def test_evaluator_reports_executor_and_planner_rates(aha_wam):
    policy, batch = aha_wam(batch_size=1)
    policy.info.cameras = ["top"]
    agent = PolicyAgent(policy, replan=4)
    agent.reset("task-0", seeds=[0])
    for obs_rgb in batch.rgb[0]:
        agent.observe(0, {"rgb": obs_rgb.numpy(), "state": batch.state[0].numpy(),
                       "depth": np.zeros((1, 1, 32, 32), np.float32), "intrinsics": np.eye(3)[None],
                       "extrinsics": np.eye(4)[None]}, {})
    for _ in range(3):
        [(actions, _)] = agent.act(decode=False)
        assert actions.shape == (4, 4)
    timing = agent.timing()
    assert timing["chunks"] == 3 and timing["refreshes"] == 1 and timing["executor_hz"] > 0
    results = [EpisodeResult("task-0", 1_000_000 + i, i == 0, 10, 3, 0.1, 0.2, timing={**timing, "executor_hz": hz})
               for i, hz in enumerate((10.0, 30.0))]
    rep = report(results, ["task-0"], None, [1_000_000, 1_000_001], 1.0, policy="aha", replan=4, workers=0)
    assert rep["tasks"]["task-0"]["timing"]["executor_hz"] == 20.0
    out = io.StringIO()
    print_report(rep, Console(file=out, width=200))
    assert "executor_hz 20.0" in out.getvalue() and "planner_hz" in out.getvalue()


def test_lagging_frames_go_to_the_planner_and_the_present_frame_to_the_executor(aha_wam, monkeypatch):
    policy, batch = aha_wam(batch_size=1)
    policy.info.cameras = ["top"]
    lag, steps = 3, 20
    with pytest.raises(WamzooError, match="0 or more"):
        PolicyAgent(policy, replan=4, frame_lag=-1)
    agent = PolicyAgent(policy, replan=4, frame_lag=lag)
    agent.reset("task-0", seeds=[0])
    V, C, H, W = batch.rgb.shape[2:]
    for i in range(steps):  # frame i is filled with 10 * i
        agent.observe(0, {"rgb": np.full((V, C, H, W), 10 * i, np.uint8), "state": batch.state[0].numpy(),
                       "depth": np.zeros((V, 1, H, W), np.float32), "intrinsics": np.eye(3)[None].repeat(V, 0),
                       "extrinsics": np.eye(4)[None].repeat(V, 0)}, {})
    b = agent.batch()
    s, n, first = policy.info.frame_stride, policy.info.n_obs, steps - len(agent.histories[0])
    want = [max(steps - 1 - lag - (n - 1 - j) * s, first) for j in range(n)]
    assert [int(b.rgb[0, j].flatten()[0]) // 10 for j in range(n)] == want
    assert int(b.rgb_now.flatten()[0]) == 10 * (steps - 1) and not bool(b.frame_pad[0, -1])
    seen = []
    real = policy.action_expert.encode_observation
    monkeypatch.setattr(policy.action_expert, "encode_observation",
                        lambda cond, rgb: seen.append(rgb) or real(cond, rgb))
    agent.act(decode=False)
    torch.testing.assert_close(seen[-1], torch.full_like(seen[-1], 10 * (steps - 1) / 255))
