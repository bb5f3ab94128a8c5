"""Inference fast paths, and the switch back to the reference path they must equal.

A fast path computes the same numbers as the plain code (within float32 rounding, <= 1e-5 on an
action chunk, checked by ``tests/test_fastpath.py`` and ``benchmarks/lerobot_latency.py``) with less
work. Each one is taken only while :func:`enabled` (the default) and only without gradients, so
training is untouched:

- one-frame encoding: a causal 3-D convolution over a single frame sees zero padding in every
  earlier time slot, so it is the 2-D convolution of the frame with the kernel's last time slice
  (:mod:`wamzoo.codecs`, the Wan VAE's ``WanCausalConv3d``), and the encoder keeps no cache for frames
  that do not follow;
- self-attention's query, key and value projections as one product over stacked weights
  (:class:`wamzoo.nn.dit.Attention`);
- keys and values only at a prefill's last layer: a prefill keeps the per-layer keys/values of the
  fixed tokens, never their hidden states, so the last layer stops after its projections
  (:func:`wamzoo.nn.mot.run_layers`).

>>> with wamzoo.fastpath.reference():      # time or check the plain path
...     policy.predict_action(obs, seed=0)                                  # doctest: +SKIP

``wamzoo bench latency --reference`` times the reference path.
"""

from __future__ import annotations

import contextlib

import torch

_enabled = True


def enabled() -> bool:
    """Whether fast paths may run now (switched on, and no gradient is being recorded)."""
    return _enabled and not torch.is_grad_enabled()


def set_enabled(flag: bool) -> None:
    """Switch the fast paths on or off for the whole process."""
    global _enabled
    _enabled = bool(flag)


@contextlib.contextmanager
def reference():
    """Run the block on the reference path (every fast path off), restoring the setting after."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before
