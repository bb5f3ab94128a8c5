"""Cross-attention context routed per token (``context_mask`` ``[B, N, L]``) and the core's per-frame
time embedding of video tokens."""

import torch

from wamzoo.interfaces import Conditioning, Stream
from wamzoo.nn.dit import DiTBlock
from wamzoo.nn.masks import TokenGroup
from wamzoo.nn.mot import TokenSet


def test_each_token_reads_only_its_context_tokens():
    torch.manual_seed(0)
    block = DiTBlock(32, 64, 2)
    B, N, L = 2, 4, 1 + 4
    x, attn, mod, ctx = torch.randn(B, N, 32), torch.randn(B, N, 32), 0.1 * torch.randn(B, N, 6, 32), torch.randn(B, L, 32)
    shared = block.finish(x, attn, mod, ctx, torch.ones(B, L, dtype=torch.bool))
    torch.testing.assert_close(block.finish(x, attn, mod, ctx, torch.ones(B, N, L, dtype=torch.bool)), shared)
    mask = torch.zeros(B, N, L, dtype=torch.bool)
    mask[:, :, 0] = True  # a shared token (e.g. the task) ...
    mask[:, torch.arange(N), 1 + torch.arange(N)] = True  # ... and one token of its own (e.g. its chunk's proprio)
    out = block.finish(x, attn, mod, ctx, mask)
    for i in range(N):
        own = block.finish(x[:, i: i + 1], attn[:, i: i + 1], mod[:, i: i + 1], ctx[:, [0, 1 + i]])
        torch.testing.assert_close(out[:, i: i + 1], own, atol=1e-6, rtol=1e-6)
    ts = TokenSet(x, mod, torch.zeros(N, 8), torch.nn.ModuleList([block]), [TokenGroup("a", N)],
                  context=ctx, context_mask=mask)
    keep = torch.tensor([False, True, False, True])
    assert torch.equal(ts.select(keep).context_mask, mask[:, keep])


def test_video_tokens_share_their_frames_time_embedding():
    from wamzoo.experts import VideoWorldModel

    torch.manual_seed(0)
    wm = VideoWorldModel(latent_channels=4, dim=32, num_layers=1, num_heads=2)
    x = torch.randn(2, 3, 1, 4, 8, 8)
    t = torch.tensor([[0.0, 0.3, 0.7], [0.0, 0.5, 0.9]])
    ts = wm.token_set(Stream(x=x, cond=t == 0, t=t), "video", Conditioning())
    per = ts.num_tokens // 3
    temb, mod = wm.dit.condition_embedder(t.repeat_interleave(per, 1))  # per token, as before
    torch.testing.assert_close(ts.temb, temb, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ts.mod, mod, atol=1e-6, rtol=1e-6)
