"""Inference fast paths equal the reference path (wamzoo/fastpath.py), and the switch works.

Every registered composition is also checked fast == reference by the conformance suite
(``wamzoo.testing.check_inference``)."""

import torch

from wamzoo import fastpath
from wamzoo.codecs import WanVAECodec
from wamzoo.nn.attention import KVCache
from wamzoo.nn.mot import assign_indices, run_layers
from wamzoo.testing import tiny_policy

VAE = {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 2], "num_res_blocks": 1, "temperal_downsample": [False, True],
       "latents_mean": [0.1] * 4, "latents_std": [2.0] * 4}


def _calls(monkeypatch, target, name):
    calls = []
    real = getattr(target, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, counted)
    return calls


def test_one_frame_encoding_is_a_2d_convolution(monkeypatch):
    torch.manual_seed(0)
    codec = WanVAECodec(config=VAE)
    frames = torch.rand(2, 1, 1, 3, 16, 16)
    conv3d = _calls(monkeypatch, torch.nn.Conv3d, "_conv_forward")
    with torch.no_grad():
        fast = codec.encode(frames)
        assert not conv3d  # every causal convolution took the 2-D path
        with fastpath.reference():
            ref = codec.encode(frames)
        assert conv3d
        torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)
        clip = torch.rand(1, 5, 1, 3, 16, 16)  # a clip: its first frame is fast, the rest use the cache
        fast = codec.encode(clip)
        with fastpath.reference():
            torch.testing.assert_close(fast, codec.encode(clip), atol=1e-5, rtol=0)
        pixels = codec.decode(fast)
        with fastpath.reference():
            torch.testing.assert_close(pixels, codec.decode(fast), atol=1e-5, rtol=0)
    assert set(codec.state_dict()) == set(WanVAECodec(config=VAE).state_dict())  # names unchanged


def test_a_prefill_stops_after_the_last_layers_keys_and_values():
    policy, batch = tiny_policy("fast-wam-tiny")
    policy.eval()
    streams, cond = policy.build_streams(batch, train=True)
    video = streams["video"]
    video.t = torch.where(video.cond, 0.0, 0.7)
    sets = policy.world_model.embed(streams, cond)
    groups = assign_indices(sets)
    n = sum(g.size for g in groups)
    mask = torch.ones(n, n, dtype=torch.bool)
    layers = len(sets[0].blocks)
    with torch.no_grad():
        fast, ref = KVCache(), KVCache()
        run_layers(sets, mask, layers, record=fast, hidden=False)
        with fastpath.reference():
            run_layers(sets, mask, layers, record=ref, hidden=False)
    assert sorted(fast.keys) == sorted(ref.keys) == list(range(layers))
    for layer in range(layers):
        assert torch.equal(fast.index[layer], ref.index[layer])
        torch.testing.assert_close(fast.keys[layer], ref.keys[layer], atol=1e-6, rtol=0)
        torch.testing.assert_close(fast.values[layer], ref.values[layer], atol=1e-6, rtol=0)


def test_fast_paths_are_off_with_gradients_and_under_reference():
    assert not torch.is_grad_enabled() or not fastpath.enabled()
    with torch.no_grad():
        assert fastpath.enabled()
        with fastpath.reference():
            assert not fastpath.enabled()
        assert fastpath.enabled()
        fastpath.set_enabled(False)
        try:
            assert not fastpath.enabled()
        finally:
            fastpath.set_enabled(True)



def test_an_euler_step_is_diffusers_update_written_out():
    from wamzoo.samplers import FlowSampler

    g = torch.Generator().manual_seed(0)
    x0, vs = torch.randn(2, 8, 3, generator=g), [torch.randn(2, 8, 3, generator=g) for _ in range(10)]

    def walk():
        s, x = FlowSampler("euler", 10, 3.0), x0
        for v in vs:
            x = s.step(v, x)
        return x

    with torch.no_grad():
        fast = walk()
        with fastpath.reference():
            assert torch.equal(fast, walk())  # the same arithmetic, bit for bit
