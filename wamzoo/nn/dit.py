"""A Wan-style DiT block split at the attention, so several experts can share one attention.

Parameter names equal diffusers' ``WanTransformerBlock`` (``norm1``, ``attn1.to_q/to_k/to_v/to_out.0``,
``attn1.norm_q/norm_k``, ``attn2.*``, ``norm2``, ``ffn.net.0.proj``, ``ffn.net.2``, ``norm3``,
``scale_shift_table``), so Wan2.2 weights load by name; unlike it, ``head_dim`` is free, which the
narrow Fast-WAM ActionDiT needs (1024 wide, 24 heads x 128).

A block runs in two halves (Fast-WAM §3.1, Mixture-of-Transformers)::

    mod = block.modulation(mod)                          # AdaLN shifts, scales and gates, once
    q, k, v = block.attention_inputs(x, mod, rope)      # AdaLN, QKV, RMSNorm(q, k), RoPE
    out = attention(concat(q...), concat(k...), ...)     # one shared masked attention
    x = block.finish(x, out, mod, context)               # gated residual, cross-attn, FFN
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wamzoo import fastpath
from wamzoo.nn.attention import attention
from wamzoo.nn.rope import apply_rope


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (diffusers' ``FP32LayerNorm``)."""

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class Attention(nn.Module):
    """Projections of one attention (names of diffusers' ``WanAttention``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6, kv_dim: int | None = None):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(kv_dim or dim, inner)
        self.to_v = nn.Linear(kv_dim or dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        self.norm_q = nn.RMSNorm(inner, eps=eps)
        self.norm_k = nn.RMSNorm(inner, eps=eps)
        self._fused_key: tuple | None = None  # see _fused
        self._fused_qkv: tuple[Tensor, Tensor] | None = None

    def qkv(self, x: Tensor, context: Tensor | None = None,
            context_kv: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if context is None and context_kv is None and fastpath.enabled():  # self-attention: one product
            q, k, v = F.linear(x, *self._fused()).chunk(3, dim=-1)
            split = (self.heads, self.head_dim)
            return self.norm_q(q).unflatten(-1, split), self.norm_k(k).unflatten(-1, split), v.unflatten(-1, split)
        q = self.norm_q(self.to_q(x)).unflatten(-1, (self.heads, self.head_dim))
        k, v = context_kv if context_kv is not None else self.kv(x if context is None else context)
        return q, k, v

    def _fused(self) -> tuple[Tensor, Tensor]:
        """``to_q``, ``to_k``, ``to_v`` stacked into one projection (:mod:`wamzoo.fastpath`), rebuilt when any of
        their tensors is replaced or changed in place."""
        parts = [t for m in (self.to_q, self.to_k, self.to_v) for t in (m.weight, m.bias)]
        key = tuple((t.data_ptr(), t._version) for t in parts)
        if self._fused_key != key:
            with torch.no_grad():
                self._fused_qkv = (torch.cat(parts[0::2]), torch.cat(parts[1::2]))
            self._fused_key = key
        return self._fused_qkv

    def kv(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of a cross-attention ``context`` (reusable while the context is fixed)."""
        k = self.norm_k(self.to_k(context)).unflatten(-1, (self.heads, self.head_dim))
        return k, self.to_v(context).unflatten(-1, (self.heads, self.head_dim))

    def out(self, x: Tensor) -> Tensor:
        return self.to_out[0](x)


class _GELUProj(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """``net.0.proj -> GELU(tanh) -> net.2`` (diffusers ``FeedForward(activation_fn="gelu-approximate")``)."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.net = nn.ModuleList([_GELUProj(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x: Tensor) -> Tensor:
        return self.net[2](self.net[0](x))


class DiTBlock(nn.Module):
    """Wan DiT block: AdaLN-modulated self-attention (RMSNorm q/k, RoPE), cross-attention, FFN."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, head_dim: int | None = None,
                 cross_attention: bool = True, cross_attn_norm: bool = True, eps: float = 1e-6):
        super().__init__()
        head_dim = head_dim or dim // num_heads
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, num_heads, head_dim, eps)
        self.attn2 = Attention(dim, num_heads, head_dim, eps) if cross_attention else None
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=True) if cross_attention and cross_attn_norm \
            else nn.Identity()
        self.ffn = FeedForward(dim, ffn_dim)
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def modulation(self, mod: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Split ``scale_shift_table + mod`` (``mod`` ``[B, N, 6, D]``) into six ``[B, N, D]`` tensors; a split
        given back (the two halves of a layer share it) is returned as it is."""
        if isinstance(mod, tuple):
            return mod
        return (self.scale_shift_table[None] + mod.float()).unbind(2)

    def attention_inputs(self, x: Tensor, mod: Tensor | tuple[Tensor, ...],
                         rope: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        shift, scale = self.modulation(mod)[:2]
        h = (self.norm1(x.float()) * (1 + scale) + shift).type_as(x)
        q, k, v = self.attn1.qkv(h)
        return apply_rope(q, rope), apply_rope(k, rope), v

    def finish(self, x: Tensor, attn_out: Tensor, mod: Tensor | tuple[Tensor, ...], context: Tensor | None = None,
               context_mask: Tensor | None = None, context_kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """The rest of the block; ``context_kv`` are precomputed ``attn2.kv(context)`` (optional)."""
        _, _, gate, c_shift, c_scale, c_gate = self.modulation(mod)
        x = (x.float() + self.attn1.out(attn_out) * gate).type_as(x)
        if self.attn2 is not None and context is not None:
            q, k, v = self.attn2.qkv(self.norm2(x.float()).type_as(x), context, context_kv)
            mask = context_mask  # [B, L], or [B, N, L] per token
            if mask is not None and mask.ndim == 2:
                mask = mask[:, None, :].expand(-1, x.shape[1], -1)
            x = x + self.attn2.out(attention(q, k, v, mask))
        h = (self.norm3(x.float()) * (1 + c_scale) + c_shift).type_as(x)
        return (x.float() + self.ffn(h).float() * c_gate).type_as(x)

    def forward(self, x: Tensor, mod: Tensor, rope: Tensor, context: Tensor | None = None,
                context_mask: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Standalone self-attention block (one expert)."""
        mod = self.modulation(mod)
        q, k, v = self.attention_inputs(x, mod, rope)
        return self.finish(x, attention(q, k, v, mask), mod, context, context_mask)


class OutputHead(nn.Module):
    """Final AdaLN + projection (``norm_out``, ``proj_out``, ``scale_shift_table`` of Wan)."""

    def __init__(self, dim: int, out_dim: int, eps: float = 1e-6):
        super().__init__()
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_dim)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        shift, scale = (self.scale_shift_table[None] + temb[:, :, None].float()).chunk(2, dim=2)
        h = self.norm_out(x.float()) * (1 + scale.squeeze(2)) + shift.squeeze(2)
        return self.proj_out(h.type_as(x))
