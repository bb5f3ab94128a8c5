"""OVCR: an exact no-op at initialisation (zero last layer) that still receives gradient."""

import torch

from wamzoo_aha_wam.executor import ChunkStarts


def test_ovcr_is_an_exact_no_op_at_initialisation(aha_wam, training_streams):
    policy, batch = aha_wam()
    ex, coupling = policy.action_expert, policy.coupling
    streams, cond = training_streams(policy, batch)
    _, keys, values = coupling.planner_pass(policy.world_model, streams, cond)
    chunks = list(range(ex.num_chunks))
    edited = ex.read_context(keys, values, chunks, cond.get(ChunkStarts).obs, cond.get(ChunkStarts).state)
    for layer, k0 in enumerate(keys):
        n = len(chunks)
        assert torch.equal(edited.keys[layer], k0.repeat(1, n, 1, 1))
        assert torch.equal(edited.values[layer], values[layer].repeat(1, n, 1, 1))
    with_ovcr = coupling.executor_pass(ex, streams, cond, keys, values)
    ovcr, ex.ovcr = ex.ovcr, None
    try:
        without = coupling.executor_pass(ex, streams, cond, keys, values)
    finally:
        ex.ovcr = ovcr
    for name in ("action", "action_prior"):
        assert torch.equal(with_ovcr[name], without[name])
    assert torch.allclose(torch.sigmoid(ovcr.gate), torch.sigmoid(torch.tensor(-4.0)))


def test_ovcr_gets_gradient_and_starts_editing(aha_wam):
    policy, batch = aha_wam()
    ovcr = policy.action_expert.ovcr
    loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    for layer in range(len(ovcr.delta)):
        assert ovcr.delta[layer][-1].weight.grad.abs().sum() > 0  # the zero layer learns at once
    opt = torch.optim.SGD(ovcr.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    for name in ("gate", "base_queries", "route.0.1.weight", "visual.1.weight"):
        assert dict(ovcr.named_parameters())[name].grad.abs().sum() > 0, name
