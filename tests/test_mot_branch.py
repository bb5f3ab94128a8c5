"""MoT engine extensions: forked ``branch`` sets, experts riding on a world model's backbone, phase stops."""

import copy

import pytest
import torch
from torch import nn

from wamzoo.interfaces import Phase
from wamzoo.nn.attention import attention
from wamzoo.nn.dit import DiTBlock
from wamzoo.nn.masks import MaskRules, TokenGroup
from wamzoo.nn.mot import TokenSet, assign_indices, run_layers
from wamzoo.nn.rope import rope_angles_1d

D, H, HD, L, M = 32, 2, 16, 3, 2


def _sets(with_branch: bool, branch: bool = True):
    torch.manual_seed(0)
    blocks = nn.ModuleList([DiTBlock(D, 64, H, HD, cross_attention=False) for _ in range(L)])
    copies = nn.ModuleList([copy.deepcopy(b) for b in blocks[L - M:]])
    for p in copies.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    torch.manual_seed(1)
    x, y = torch.randn(2, 7, D), torch.randn(2, 5, D)
    mod = lambda n: 0.1 * torch.randn(2, n, 6, D)  # noqa: E731
    rope = lambda n: rope_angles_1d(torch.arange(n).float(), HD)  # noqa: E731
    sets = [TokenSet(x, mod(7), rope(7), blocks, [TokenGroup("a", 7, "a")]),
            TokenSet(y, mod(5), rope(5), blocks, [TokenGroup("b", 5, "b")])]
    if with_branch:
        sets.insert(1, TokenSet(torch.zeros(2, 7, D), mod(7), rope(7), copies, [TokenGroup("a.branch", 7, "d")],
                                first_layer=L - M, source=["a"], branch=branch))
    return sets


RULES = MaskRules({"a -> a": "all", "a -> b": "all", "b -> *": "all", "a.branch -> *": "all",
                   "b -> a.branch": "none"})


def test_branch_leaves_the_main_sets_bit_identical_and_starts_from_their_hidden_state():
    plain = _sets(False)
    out_plain = run_layers(plain, RULES.build(assign_indices(plain)), L)
    forked = _sets(True)
    out = run_layers(forked, RULES.build(assign_indices(forked)), L)
    assert torch.equal(out[0], out_plain[0]) and torch.equal(out[2], out_plain[1])
    # reference by hand: the branch starts from set a's hidden state entering layer L - M, and its
    # queries attend to its own keys plus the main sets' keys of the same layer
    a, d, b = _sets(True)
    xa, xb = run_layers([a, b], RULES.build(assign_indices([a, b])), L - M)
    xd = xa
    for layer in range(L - M, L):
        qa, ka, va = a.blocks[layer].attention_inputs(xa, a.mod, a.rope)
        qb, kb, vb = b.blocks[layer].attention_inputs(xb, b.mod, b.rope)
        qd, kd, vd = d.blocks[layer - (L - M)].attention_inputs(xd, d.mod, d.rope)
        k, v = torch.cat([ka, kb], 1), torch.cat([va, vb], 1)
        oa = attention(torch.cat([qa, qb], 1), k, v)
        od = attention(qd, torch.cat([k, kd], 1), torch.cat([v, vd], 1))
        xa, xb, xd = (a.blocks[layer].finish(xa, oa[:, :7], a.mod), b.blocks[layer].finish(xb, oa[:, 7:], b.mod),
                      d.blocks[layer - (L - M)].finish(xd, od, d.mod))
    torch.testing.assert_close(out[1], xd, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0], xa, atol=1e-5, rtol=1e-5)


def test_branch_keys_read_by_the_main_sets_are_refused():
    sets = _sets(True)
    bad = MaskRules({**RULES.to_dict(), "a -> a.branch": "all"})
    with pytest.raises(ValueError, match="branch"):
        run_layers(sets, bad.build(assign_indices(sets)), L)


def test_missing_source_group_is_named():
    sets = _sets(True)
    sets[1].source = ["nope"]
    with pytest.raises(ValueError, match="nope"):
        assign_indices(sets)


def test_phase_stop_truncates_length():
    assert Phase({"video": 50, "action": 10}).length == 50
    assert Phase({"video": 50, "action": 10}, stop=10).length == 10


class _Riding(nn.Module):
    """A minimal expert without blocks: linear in/out tokens on the world model's backbone (``cond.backbone``)."""

    def __init__(self, dim=32):
        super().__init__()
        self.inp, self.out = nn.Linear(4, dim), nn.Linear(dim, 4)

    def embed(self, streams, cond):
        s, backbone = streams["action"], cond.backbone
        temb, mod = backbone.embed_time(s.t)
        rope = rope_angles_1d(torch.arange(s.units).float(), backbone.head_dim)
        return [TokenSet(self.inp(s.x), mod, rope, backbone.blocks, [TokenGroup("action", s.units, "action")], temb,
                         backbone.context, backbone.context_mask)]

    def head(self, sets, hidden, streams):
        return {"action": self.out(hidden[0])}


def test_an_expert_rides_on_the_world_models_blocks():
    from wamzoo.couplings import MoTCoupling
    from wamzoo.experts import VideoWorldModel
    from wamzoo.interfaces import Conditioning, Stream

    torch.manual_seed(0)
    wm = VideoWorldModel(latent_channels=8, dim=32, num_layers=2, num_heads=2, head_dim=16, context_dim=8)
    expert = _Riding()
    coupling = MoTCoupling({"video.* -> video.*": "all", "action -> *": "all"})
    B = 2
    video = Stream(torch.randn(B, 2, 1, 8, 4, 4), torch.tensor([[True, False]] * B), t=torch.tensor([[0.0, 0.7]] * B))
    action = Stream(torch.randn(B, 5, 4), torch.zeros(B, 5, dtype=torch.bool), group="action", t=torch.full((B, 5), 0.3))
    cond = Conditioning(context=torch.randn(B, 3, 8), context_mask=torch.ones(B, 3, dtype=torch.bool))
    cond.backbone = wm.backbone(cond)
    out = coupling(wm, expert, {"video": video, "action": action}, cond)
    assert out["action"].shape == (B, 5, 4) and out["video"].shape == video.x.shape
    out["action"].sum().backward()
    assert wm.dit.blocks[0].attn1.to_q.weight.grad is not None  # the action tokens ran through these blocks
    assert not any(n.startswith("blocks") for n, _ in expert.named_parameters())
