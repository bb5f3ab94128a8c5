"""The executor: per-chunk flow times, offset windows, and cached (incremental) == full recomputation."""

import torch

from wamzoo.nn.mot import run_layers

from wamzoo_aha_wam.coupling import joined
from wamzoo_aha_wam.executor import ActionHistory, ChunkStarts
from wamzoo_aha_wam.offsets import gather_steps, sample_offsets


def test_offsets_are_uniform_over_the_whole_range():
    o = sample_offsets(32_000, 15, torch.Generator().manual_seed(0))
    counts = torch.bincount(o, minlength=16)
    assert o.dtype == torch.long and int(o.min()) == 0 and int(o.max()) == 15 and len(counts) == 16
    assert (counts - 2000).abs().max() < 200  # ~ 4.5 standard deviations of a uniform count
    assert not sample_offsets(100, 0).any()


def test_offset_window_slices_actions_observations_and_proprio(aha_wam):
    policy, batch = aha_wam(batch_size=8)
    ex = policy.action_expert
    K = batch.action.shape[1]
    batch.action = torch.arange(K, dtype=torch.float32)[None, :, None].expand(8, K, batch.action.shape[2]).clone()
    batch.step_state = torch.arange(K, dtype=torch.float32)[None, :, None].expand(8, K, 4).clone()
    policy.normalizer.modes = {"state": "identity", "action": "identity"}
    streams, cond = policy.build_streams(batch, train=True)
    o = cond.get(ChunkStarts).offsets
    assert int(o.min()) >= 0 and int(o.max()) <= ex.max_offset and K == ex.window + ex.max_offset
    steps = o[:, None] + torch.arange(ex.window)
    for name in ("action", "action_clean", "action_prior"):
        assert torch.equal(streams[name].x[..., 0], steps.float())
    starts = o[:, None] + ex.chunk_size * torch.arange(ex.num_chunks)
    assert torch.equal(cond.get(ChunkStarts).state[..., 0], starts.float())  # chunk-start proprio
    rgb = gather_steps(batch.step_rgb, starts).float() / 255
    want = policy.codec.encode(rgb.reshape(-1, 1, *rgb.shape[2:])).reshape(cond.get(ChunkStarts).obs.shape)
    assert torch.equal(cond.get(ChunkStarts).obs, want)  # chunk-start frames


def test_flow_times_are_drawn_per_chunk_and_shared_by_both_branches(aha_wam, training_streams):
    policy, batch = aha_wam(batch_size=4)
    streams, _ = training_streams(policy, batch)
    ex = policy.action_expert
    t = streams["action"].t.reshape(4, ex.num_chunks, ex.chunk_size)
    assert torch.equal(t, t[..., :1].expand_as(t))  # one time per chunk
    assert (t[:, 1:, 0] != t[:, :-1, 0]).all()  # independent across chunks
    assert torch.equal(streams["action_prior"].t, streams["action"].t)
    assert not streams["action_clean"].t.any() and streams["action_clean"].cond.all()


def test_incremental_executor_equals_full_recomputation(aha_wam, training_streams):
    policy, batch = aha_wam(batch_size=2)
    policy.eval()
    coupling, ex = policy.coupling, policy.action_expert
    for p in ex.ovcr.parameters():  # a trained-looking OVCR, so the per-chunk edits matter
        torch.nn.init.normal_(p, std=0.2)
    streams, cond = training_streams(policy, batch)
    with torch.no_grad():
        _, keys, values = coupling.planner_pass(policy.world_model, streams, cond)
        full = coupling.executor_pass(ex, streams, cond, keys, values)["action"]
        history = ActionHistory()
        _, mask = ex.layout.mask(coupling.rules, keys[0].shape[1])
        for c in range(ex.num_chunks):
            part = slice(c * ex.chunk_size, (c + 1) * ex.chunk_size)
            ctx, text = ex.chunk_inputs(cond, keys, values, c, cond.get(ChunkStarts).obs[:, c: c + 1],
                                        cond.get(ChunkStarts).state[:, c: c + 1])
            ts = ex.chunk_set([c], {"noisy": (streams["action"].x[:, part], streams["action"].t[:, part])}, text)
            h = run_layers([ts], mask, len(keys), cache=joined(ctx, history.cache))[0]  # only this chunk's tokens
            torch.testing.assert_close(ex.dit.head(h), full[:, part], atol=1e-5, rtol=1e-5)
            coupling._append(ex, history, ctx, ex.clean_set([c], streams["action_clean"].x[:, part], text),
                             keys[0].shape[1])  # append-only
            assert history.chunks == c + 1 and history.cache.num_tokens == (c + 1) * ex.chunk_size
        # the runtime rebuilds a window's history in one pass over its chunks: the same keys/values
        one_pass, chunks = ActionHistory(), list(range(ex.num_chunks))
        text = ex.context_for(cond, ex.proprio_tokens(cond.get(ChunkStarts).state), ex.chunk_size)
        clean = ex.clean_set(chunks, streams["action_clean"].x, text)
        coupling._append(ex, one_pass, ex.read_context(keys, values, chunks, cond.get(ChunkStarts).obs, cond.get(ChunkStarts).state),
                         clean, keys[0].shape[1])
    assert one_pass.chunks == history.chunks
    for layer in range(len(keys)):
        torch.testing.assert_close(one_pass.cache.keys[layer], history.cache.keys[layer], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(one_pass.cache.values[layer], history.cache.values[layer], atol=1e-5, rtol=1e-5)
