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
