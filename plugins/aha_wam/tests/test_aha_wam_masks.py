"""The attention rules of AHA-WAM, group by group: chunk-causal executor, per-frame causal planner."""

import torch

from wamzoo.nn.masks import MaskRules
from wamzoo.nn.mot import assign_indices

from wamzoo_aha_wam.coupling import AHAWAMCoupling
from wamzoo_aha_wam.executor import CHUNK_CAUSAL, KINDS, ChunkLayout
from wamzoo_aha_wam.planner import PER_FRAME_CAUSAL

C, CH, F = 3, 2, 3  # chunks, actions per chunk, planner context tokens per chunk

EXPECTED = {  # (query kind, key kind) -> visible(query chunk, key chunk)
    ("clean", "clean"): lambda q, k: k <= q,   # clean -> clean: earlier or same chunk
    ("noisy", "noisy"): lambda q, k: k == q,   # noisy -> noisy: same chunk
    ("noisy", "clean"): lambda q, k: k < q,    # noisy -> clean: strictly earlier chunks
    ("prior", "prior"): lambda q, k: k == q,   # prior branch: its own chunk ...
    ("clean", "ctx"): lambda q, k: k == q,     # ... and every action token reads its chunk's planner context
    ("noisy", "ctx"): lambda q, k: k == q,
    ("prior", "ctx"): lambda q, k: k == q,
}


def _block(layout, mask, kq, cq, kk, ck):
    rows = layout.index(kq, cq)
    cols = layout.ctx_index(ck, F) if kk == "ctx" else layout.index(kk, ck)
    return mask[rows][:, cols]


def test_chunk_causal_rules_group_by_group():
    layout = ChunkLayout(C, CH)
    groups, mask = layout.mask(MaskRules(CHUNK_CAUSAL), F)
    assert mask.shape == (3 * C * CH + C * F,) * 2 and sum(g.size for g in groups) == mask.shape[0]
    for kq in KINDS:
        for kk in (*KINDS, "ctx"):
            rule = EXPECTED.get((kq, kk), lambda q, k: False)
            for cq in range(C):
                for ck in range(C):
                    block = _block(layout, mask, kq, cq, kk, ck)
                    want = rule(cq, ck)
                    assert bool(block.all()) if want else not bool(block.any()), (kq, cq, kk, ck)
    ctx_rows = torch.cat([layout.ctx_index(c, F) for c in range(C)])
    assert not mask[ctx_rows].any()  # the context only gives keys


def test_planner_is_per_frame_causal_and_never_reads_actions(aha_wam):
    policy, batch = aha_wam()
    streams, cond = policy.build_streams(batch, train=True)
    planner = policy.world_model
    video = streams["video"]
    video.t = torch.zeros(video.cond.shape)
    vset = planner.token_set(video, "video", cond)
    vgroups = assign_indices([vset])
    assert [g.name for g in vgroups] == ["video.hist", "video.cond", "video.future"]
    n_obs = planner.history + 1
    assert [g.size // vgroups[1].size for g in vgroups] == [n_obs - 1, 1, video.units - n_obs]
    layout = policy.action_expert.layout
    agroups = layout.groups(vgroups[1].size)
    rules = policy.coupling.rules
    mask = rules.build(vgroups + agroups)
    nv = sum(g.size for g in vgroups)
    frame = torch.cat([g.index for g in vgroups]).long()
    assert torch.equal(mask[:nv, :nv], frame[None, :] <= frame[:, None])  # a frame sees earlier frames and itself
    assert not mask[:nv, nv:].any()  # video never attends to actions
    assert not mask[nv:, :nv].any()  # actions read the planner only through its context (ctx)
    assert rules.to_dict() == {**PER_FRAME_CAUSAL, **CHUNK_CAUSAL} == AHAWAMCoupling().rules.to_dict()
