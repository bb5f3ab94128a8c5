"""ActionDiT initialised from video-expert weights: interpolation to its width and sqrt(d_v / d_a) scaling."""

import math

import pytest
import torch

from wamzoo.nn.action_dit import ActionDiT
from wamzoo.nn.video_dit import VideoDiT
from wamzoo_fast_wam.action import FastWAMAction
from wamzoo_fast_wam.action_init import (backbone_from_video, init_action_from_video, main, resize,
                                         save_backbone)

DV, DA, FV, FA, HEADS, HEAD_DIM, CTX = 48, 16, 96, 32, 2, 8, 12


def _pair(seed=0):
    torch.manual_seed(seed)
    video = VideoDiT(4, DV, FV, 2, HEADS, HEAD_DIM, (1, 2, 2), CTX)
    action = ActionDiT(3, DA, FA, 2, HEADS, HEAD_DIM, CTX)
    return video, action


def test_resize_is_linear_interpolation_with_aligned_corners():
    ramp = torch.arange(7.0)[None].expand(3, -1)  # rows 0..6
    out = resize(ramp, (3, 4))
    torch.testing.assert_close(out, torch.tensor([0.0, 2.0, 4.0, 6.0])[None].expand(3, -1))
    col = resize(torch.arange(5.0)[:, None] * torch.ones(1, 2), (3, 2))  # first dimension resized too
    torch.testing.assert_close(col[:, 0], torch.tensor([0.0, 2.0, 4.0]))


def test_init_from_video_scales_resized_inputs_by_sqrt_of_the_width_ratio():
    video, action = _pair()
    before = {k: v.clone() for k, v in action.state_dict().items()}
    written = init_action_from_video(action, video)
    state, src = action.state_dict(), video.state_dict()
    alpha = math.sqrt(DV / DA)
    # a matrix whose input width shrinks: interpolated, then times sqrt(d_video / d_action)
    q = "blocks.0.attn1.to_q.weight"  # [heads * head_dim, d]: output width equal, input width resized
    torch.testing.assert_close(state[q], resize(src[q], (HEADS * HEAD_DIM, DA)) * alpha)
    torch.testing.assert_close(state[q][:, 0], src[q][:, 0] * alpha)  # aligned corners keep the end columns
    torch.testing.assert_close(state[q][:, -1], src[q][:, -1] * alpha)
    # the AdaLN table [1, 6, d] is matrix-like with a resized last dimension: scaled too
    t = "blocks.1.scale_shift_table"
    torch.testing.assert_close(state[t], resize(src[t], (1, 6, DA)) * alpha)
    # output projection: only its output width changes -> interpolated, not scaled
    o = "blocks.0.attn1.to_out.0.weight"
    torch.testing.assert_close(state[o], resize(src[o], (DA, HEADS * HEAD_DIM)))
    # FFN out [d, ffn]: its input is the FFN width, scaled by sqrt(ffn_video / ffn_action)
    f = "blocks.0.ffn.net.2.weight"
    torch.testing.assert_close(state[f], resize(src[f], (DA, FA)) * math.sqrt(FV / FA))
    # biases and norms are interpolated without scaling; same-shape tensors are copied
    b = "blocks.0.ffn.net.0.proj.bias"
    torch.testing.assert_close(state[b], resize(src[b], (FA,)))
    n = "blocks.0.attn1.norm_q.weight"
    assert torch.equal(state[n], src[n])
    e = "condition_embedder.time_embedder.linear_1.weight"  # [d, freq]: input width equal, no scaling
    torch.testing.assert_close(state[e], resize(src[e], (DA, 256)))
    # the action encoder and head keep their own initialisation
    for key in ("action_encoder.weight", "head.weight", "head.bias"):
        assert key not in written and torch.equal(state[key], before[key])
    assert set(written) == {k for k in state if not k.startswith(("action_encoder.", "head."))}
    unscaled = backbone_from_video(src, state, scale=False)
    torch.testing.assert_close(unscaled[q], resize(src[q], (HEADS * HEAD_DIM, DA)))


def test_backbone_file_round_trip_and_cli(tmp_path):
    video, action = _pair()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in video.state_dict().items()}, str(tmp_path / "video.safetensors"))
    out = tmp_path / "backbone.safetensors"
    assert main(["--video", str(tmp_path / "video.safetensors"), "--out", str(out), "--dim", str(DA),
                 "--ffn-dim", str(FA), "--num-heads", str(HEADS)]) == 0
    expert = FastWAMAction(action_dim=3, horizon=8, dim=DA, ffn_dim=FA, num_layers=2, num_heads=HEADS, head_dim=HEAD_DIM,
                           context_dim=CTX, backbone=str(out))
    want = backbone_from_video(video.state_dict(), expert.dit.state_dict())
    got = expert.dit.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items())
    save_backbone(tmp_path / "bad.safetensors", {"blocks.0.ffn.net.2.weight": torch.zeros(1)}, {})
    with pytest.raises(ValueError, match="does not fit this ActionDiT"):
        FastWAMAction(action_dim=3, horizon=8, dim=DA, ffn_dim=FA, num_layers=2, num_heads=HEADS, head_dim=HEAD_DIM,
                      context_dim=CTX, backbone=str(tmp_path / "bad.safetensors"))
    with pytest.raises(FileNotFoundError, match="backbone: null"):
        FastWAMAction(action_dim=3, horizon=8, dim=DA, num_heads=HEADS, head_dim=HEAD_DIM, backbone=str(tmp_path / "missing"))
