"""The rolling memory: incremental refreshes reproduce the per-frame causal window, and the oldest
frame is dropped; at an episode's start training sees what inference sees."""

from dataclasses import replace

import torch

from wamzoo.interfaces import Stream
from wamzoo.nn.rope import apply_rope, rope_angles_3d

from wamzoo_aha_wam.memory import RollingMemory, refresh


def _frames(policy, batch):
    streams, cond = policy.build_streams(batch, train=True)
    return streams["video"], cond


def test_incremental_refreshes_equal_the_training_window(aha_wam):
    policy, batch = aha_wam()
    planner = policy.world_model.eval()
    video, cond = _frames(policy, batch)
    n_obs = planner.history + 1
    window = Stream(x=video.x[:, :n_obs], cond=video.cond[:, :n_obs], t=torch.zeros(video.cond[:, :n_obs].shape))
    with torch.no_grad():
        _, keys, values = policy.coupling.planner_pass(planner, {"video": window}, cond)
        memory = RollingMemory(planner.history)
        for f in range(n_obs):  # an episode from its start: frame f at step f * frame_stride
            context = refresh(planner, memory, video.x[:, f: f + 1], cond)
    for layer in range(len(keys)):
        torch.testing.assert_close(context.keys[layer], keys[layer], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(context.values[layer], values[layer], atol=1e-5, rtol=1e-5)


def test_rolling_memory_drops_the_oldest_frame(aha_wam):
    policy, batch = aha_wam()
    planner = policy.world_model.eval()
    video, cond = _frames(policy, batch)
    N = planner.history
    memory = RollingMemory(N)
    contexts = [refresh(planner, memory, video.x[:, i % video.units: i % video.units + 1], cond) for i in range(N + 3)]
    F = memory.tokens
    assert len(memory) == N and memory.cache.num_tokens == N * F
    dit = planner.dit
    for layer in range(len(contexts[0].keys)):
        values = memory.cache.values[layer].reshape(2, N, F, *memory.cache.values[layer].shape[2:])
        keys = memory.cache.keys[layer].reshape(values.shape)
        for j, context in enumerate(contexts[-N:]):  # the last N frames, oldest first
            assert torch.equal(values[:, j], context.values[layer])
            back = torch.tensor([[-(N - 1 - j) * planner.rope_frame_stride, 0.0, 0.0]])  # later refreshes moved it back
            want = apply_rope(context.keys[layer], rope_angles_3d(back, dit.head_dim, dit.rope_theta))
            torch.testing.assert_close(keys[:, j], want, atol=1e-5, rtol=1e-5)
        for old in contexts[:-N]:
            assert not any(torch.equal(values[:, j], old.values[layer]) for j in range(N))
    slots = list(memory.slots)
    assert len(set(slots)) == N and memory.next_slot() not in slots


def test_an_episode_start_trains_on_what_inference_sees(aha_wam):
    """History frames before an episode's start are padding: the current frame's context is the one a
    refresh with an empty memory gives (inference), however the dataset filled the padded frames."""
    policy, batch = aha_wam()
    planner = policy.world_model.eval()
    n_obs = planner.history + 1
    pad = torch.zeros(batch.rgb.shape[:2], dtype=torch.bool)
    pad[0, : n_obs - 1] = True  # sample 0 starts its episode now; sample 1 has its whole history
    noisy = batch.rgb.clone()
    noisy[0, : n_obs - 1] = torch.randint(0, 255, noisy[0, : n_obs - 1].shape, dtype=noisy.dtype)
    contexts = []
    for rgb in (batch.rgb, noisy):
        streams, cond = policy.build_streams(batch.replace(rgb=rgb, frame_pad=pad), train=True)
        video = streams["video"]
        window = replace(video, x=video.x[:, :n_obs], cond=video.cond[:, :n_obs], pad=video.pad[:, :n_obs],
                         t=torch.zeros(video.cond[:, :n_obs].shape))
        with torch.no_grad():
            contexts.append(policy.coupling.planner_pass(planner, {"video": window}, cond)[1:])
            alone = refresh(planner, RollingMemory(planner.history), video.x[:, n_obs - 1: n_obs], cond)
        for layer in range(len(alone.keys)):
            torch.testing.assert_close(contexts[-1][0][layer][0], alone.keys[layer][0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(contexts[-1][1][layer][0], alone.values[layer][0], atol=1e-5, rtol=1e-5)
        last = len(alone.keys) - 1  # sample 1's current frame reads its history (layer 0's keys come before any)
        assert not torch.allclose(contexts[-1][0][last][1], alone.keys[last][1], atol=1e-3)
    for layer in range(len(contexts[0][0])):  # what the padded frames hold does not matter
        torch.testing.assert_close(contexts[0][0][layer], contexts[1][0][layer])
