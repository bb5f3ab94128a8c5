"""Helpers for tests of wamzoo and its plugins (no network needed)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

import pytest


def hub_cache(cache_dir: str | os.PathLike, repo_id: str, files: Mapping[str, bytes | str | os.PathLike],
              revision: str = "main") -> Path:
    """Lay ``files`` out as a Hugging Face cache entry of model ``repo_id`` at ``revision``.

    ``hf_hub_download(repo_id, name, cache_dir=cache_dir)`` then finds them with
    ``HF_HUB_OFFLINE=1``, exactly as after a real download. Returns the snapshot folder.
    """
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    digest = hashlib.sha1(repr(sorted(files)).encode() + repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / digest
    for name, content in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            shutil.copyfile(content, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(digest)
    return snapshot


def tiny_policy(recipe: str, overrides: Sequence[str] = (), seed: int = 0):
    """A fresh policy of ``recipe`` (seeded) and one training batch of its data: ``(policy, batch)``."""
    import torch

    from wamzoo.policy import WAMPolicy
    from wamzoo.recipes import compose
    from wamzoo.training import make_datamodule

    composed = compose(recipe, list(overrides))
    data = make_datamodule(composed)
    torch.manual_seed(seed)
    return WAMPolicy.from_config(composed.policy, data.info()), next(iter(data.train_dataloader()))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not spin against other jobs on a shared CPU).

    Import it into a ``conftest.py`` (``from wamzoo.testing import one_thread``) to apply it to every test there.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def upstream_wan_block(r, dim: int, ffn: int, attn: int | None = None) -> dict:
    """One Wan DiT block's parameters under the upstream names (DiffSynth ``DiTBlock``, Wan's
    ``WanAttentionBlock``), for converter tests: self/cross attention ``q, k, v, o`` with RMSNorm
    ``norm_q``/``norm_k``, ``norm3`` (affine cross-attention LayerNorm), ``ffn.0``/``ffn.2`` and
    ``modulation [1, 6, dim]``. ``r(*shape)`` makes a random tensor; ``attn`` is the attention width
    (default ``dim``)."""
    attn = attn or dim
    p = {}
    for a in ("self_attn", "cross_attn"):
        for n in "qkv":
            p.update({f"{a}.{n}.weight": r(attn, dim), f"{a}.{n}.bias": r(attn)})
        p.update({f"{a}.o.weight": r(dim, attn), f"{a}.o.bias": r(dim), f"{a}.norm_q.weight": 1 + r(attn),
                  f"{a}.norm_k.weight": 1 + r(attn)})
    p.update({"norm3.weight": 1 + r(dim), "norm3.bias": r(dim), "ffn.0.weight": r(ffn, dim), "ffn.0.bias": r(ffn),
              "ffn.2.weight": r(dim, ffn), "ffn.2.bias": r(dim), "modulation": r(1, 6, dim)})
    return p


# -- conformance: what every registered component must do inside a tiny composition ----------------
def _seeded_actions(policy, obs, seed: int | list[int] = 0, **kwargs):
    """Actions for one seed, or for one seed per sample (a list)."""
    import torch

    policy.reset()
    generator = ([torch.Generator().manual_seed(s) for s in seed] if isinstance(seed, list)
                 else torch.Generator().manual_seed(seed))
    return policy.predict(obs, generator=generator, **kwargs)["action"]


def check_gradients(policy, batch, case: str = "") -> None:
    """With every loss at weight 1, a gradient reaches every trainable parameter over a few batches (after
    two optimiser steps, so zero-initialised output layers such as OVCR's edit pass gradient too). Where
    the world model provides depth and the data has none, metric depth of 1-2 m is made up; a world model
    with nothing to predict (no future unit) only has to be reached."""
    import torch

    if batch.depth is None and "depth" in policy.world_model.provides:
        B, T, V, _, H, W = batch.rgb.shape
        batch = batch.replace(depth=1.0 + torch.rand(B, T, V, 1, H, W, generator=torch.Generator().manual_seed(0)))
    weights, policy.loss_weights = policy.loss_weights, {}
    try:
        policy.train()
        opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
        for seed in range(2):
            opt.zero_grad()
            policy.compute_loss(batch, generator=torch.Generator().manual_seed(seed))[0].backward()
            opt.step()
        policy.zero_grad()
        for seed in range(3):  # timesteps and noise differ per batch (e.g. ANS's clean-action case)
            loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(seed))
            assert torch.isfinite(loss), f"{case}: loss {loss}"
            loss.backward()
    finally:
        policy.loss_weights = weights
    missing = [n for n, p in policy.named_parameters()
               if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    streams, _ = policy.build_streams(batch, train=True)
    if not any(not bool(streams[n].cond.all()) for n in policy.world_model.streams_produced if n in streams):
        # nothing to predict (behaviour cloning: no future frame): the world model is only an encoder, whose
        # output head and last layer's queries serve nobody; it must still learn from the actions
        assert any(n.startswith("world_model.") for n, p in policy.named_parameters()
                   if p.requires_grad and n not in missing), f"{case}: no gradient reaches the world model"
        missing = [n for n in missing if not n.startswith("world_model.")]
    assert not missing, f"{case}: no gradient reaches {len(missing)} trainable parameter(s), e.g. {missing[:6]}"


def check_loss_decreases(policy, batch, steps: int = 20, case: str = "") -> None:
    """The loss on one batch, with fixed noise and timesteps, falls by 10% in ``steps`` Adam steps."""
    import torch

    policy.train()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=3e-3)

    def loss_now():
        return policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))[0]

    first = float(loss_now().detach())
    for _ in range(steps):
        opt.zero_grad()
        loss_now().backward()
        opt.step()
    last = float(loss_now().detach())
    assert last < 0.9 * first, f"{case}: loss {first:.4f} -> {last:.4f} after {steps} steps"


def check_inference(policy, batch, case: str = "") -> None:
    """Finite actions; identical for an identical seed; the fast paths equal the reference path
    (:mod:`wamzoo.fastpath`, <= 1e-5); cached == uncached (<= 1e-5) where the coupling declares an uncached
    reference (``Coupling.uncached_reference``); with one generator per sample, each sample's actions in the
    batch equal its actions sampled alone (<= 1e-5: batched evaluation)."""
    import torch

    from wamzoo import fastpath

    policy.eval()
    obs = batch.observation()
    a = _seeded_actions(policy, obs)
    assert torch.isfinite(a).all(), f"{case}: non-finite actions"
    assert torch.equal(a, _seeded_actions(policy, obs)), f"{case}: two calls with one seed differ"
    with fastpath.reference():
        torch.testing.assert_close(_seeded_actions(policy, obs), a, atol=1e-5, rtol=0,
                                   msg=lambda m: f"{case}: fast path != reference path: {m}")
    if policy.coupling.uncached_reference:
        torch.testing.assert_close(_seeded_actions(policy, obs, cache=False), a, atol=1e-5, rtol=0,
                                   msg=lambda m: f"{case}: cached != uncached: {m}")
    seeds = range(obs.batch_size)
    together = _seeded_actions(policy, obs, seed=list(seeds))
    for i in seeds:
        torch.testing.assert_close(together[i:i + 1], _seeded_actions(policy, obs.index([i]), seed=[i]), atol=1e-5,
                                   rtol=0, msg=lambda m: f"{case}: sample {i} differs batched and alone: {m}")


def check_precision(policy, batch, dtype: str = "bfloat16", tolerance: float = 0.02, case: str = "") -> None:
    """At ``dtype`` (on the CPU) the actions stay within ``tolerance`` x max(1, max |action|) of float32's
    for the same seed, the normaliser stays float32, and the actions come back float32."""
    import torch

    policy.eval()
    obs = batch.observation()
    want = _seeded_actions(policy, obs)
    policy.place("cpu", dtype)
    got = _seeded_actions(policy, obs)
    assert policy.dtype == getattr(torch, dtype) and got.dtype == torch.float32, f"{case}: {policy.dtype}, {got.dtype}"
    assert all(b.dtype == torch.float32 for b in policy.normalizer.buffers()), f"{case}: normaliser left float32"
    bound = tolerance * max(1.0, float(want.abs().max()))
    err = float((got - want).abs().max())
    assert err <= bound, f"{case}: {dtype} actions differ from float32 by {err:.4f} (> {bound:.4f})"


def check_save_load(policy, batch, folder: str | os.PathLike, case: str = "") -> None:
    """``save_pretrained`` -> ``from_pretrained`` gives the same actions for the same seed."""
    import torch

    from wamzoo.policy import WAMPolicy

    policy.eval()
    obs = batch.observation()
    policy.save_pretrained(Path(folder))
    loaded = WAMPolicy.from_pretrained(str(folder))
    assert torch.equal(_seeded_actions(loaded, obs), _seeded_actions(policy, obs)), \
        f"{case}: actions change after save -> load"


def check_conformance(recipe: str, folder: str | os.PathLike, overrides: Sequence[str] = ()) -> None:
    """Every conformance check on a fresh tiny policy of ``recipe`` (``folder``: an empty folder to save into)."""
    for check in (check_gradients, check_loss_decreases, check_inference, check_precision):
        policy, batch = tiny_policy(recipe, overrides)
        check(policy, batch, case=recipe)
    policy, batch = tiny_policy(recipe, overrides)
    check_save_load(policy, batch, Path(folder) / "saved", case=recipe)
