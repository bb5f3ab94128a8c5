"""AHA-WAM's action executor: Fast-WAM's ActionDiT over action chunks, trained by chunk-causal teacher
forcing (release: ``AHAWAMChunkBase``, ``ActionDiT.build_action_self_attention_mask``,
``_build_context_attention_mask``, ``forward_prior_action_with_chunk_updated_kv``; model config
``action_horizon: 64``, ``action_chunk_size: 16``, ``action_train_timestep_mode: per_chunk``).

A planner window holds ``num_chunks`` chunks of ``chunk_size`` actions (paper: 4 x 16 = 64, or 5 x 16
= 80 with offsets). In training the executor sees the window twice, as clean chunks (teacher
forcing, ``t = 0``) and as noisy chunks with one flow time per chunk (``Stream.chunk``), under the
rules of :data:`CHUNK_CAUSAL`:

- clean -> clean: earlier or same chunk;
- noisy -> noisy: same chunk;
- noisy -> clean: strictly earlier chunks;
- every action token -> the planner's context for its own chunk (group ``ctx``: the current frame's
  keys/values, edited per chunk by :mod:`wamzoo_aha_wam.ovcr`).

The *prior* branch (the code's ``action_prior``, its loss weighted by ``loss_weights.action_prior``,
paper: 1) denoises a second copy of the noisy chunks that reads only ``[K', own chunk]``. Both
branches are trained (the code's chunk base trains the teacher-forced one, the released model the
prior one). Sampling follows the released model by default (``infer_branch="prior"``: the prior
branch, no action history); ``infer_branch="history"`` samples as the paper describes, with the
teacher-forced branch and the action history. The sampled chunk is the ``action`` stream either way.

Each chunk also observes what the robot sees at its start: the frame (OVCR's input; at inference
``batch.rgb_now`` when the planner's frames lag the present, else the last frame) and the
proprioception, one token appended to the chunk's cross-attention context (the code routes the
chunk-start proprio token to the current chunk only). In training these come from the data's
per-step observations (``batch.step_rgb`` and ``batch.step_state``, ``data.step_obs``) at
the chunk starts of the offset window (:mod:`wamzoo_aha_wam.offsets`).

At inference the executor produces one chunk per call: its tokens read the planner context of the
chunk and, with ``infer_branch="history"``, the :class:`ActionHistory`, the append-only keys/values
of the clean chunks already generated in the window (one clean pass per chunk appends them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from wamzoo.batch import BatchError
from wamzoo.composition import caps
from wamzoo.interfaces import Conditioning, Stream
from wamzoo.nn.attention import KVCache
from wamzoo.nn.masks import MaskRules, TokenGroup
from wamzoo.nn.mot import TokenSet

from wamzoo_aha_wam.offsets import chunk_start_steps, check_window, gather_steps, sample_offsets, window_steps
from wamzoo_aha_wam.ovcr import OVCR
from wamzoo_fast_wam.action import FastWAMAction

CHUNK_CAUSAL = {
    "action.clean -> action.clean": "causal",   # clean -> clean: earlier or same chunk
    "action -> action": "same",                 # noisy -> noisy: same chunk
    "action -> action.clean": "strict",         # noisy -> clean: strictly earlier chunks
    "action_prior -> action_prior": "same",     # prior branch: its own chunk ...
    "action* -> ctx": "same",                   # ... and every action token: its chunk's planner context
}
#: Token group and stream of each kind of action token.
GROUPS = {"clean": "action.clean", "noisy": "action", "prior": "action_prior"}
STREAMS = {"clean": "action_clean", "noisy": "action", "prior": "action_prior"}
KINDS = tuple(GROUPS)


@dataclass
class ChunkStarts:
    """What the executor observed at each chunk's start in this pass (``Conditioning.get(ChunkStarts)``):
    the frames' latents ``obs`` ``[B, N, V, C, h, w]`` (``None`` without OVCR), the normalised proprio
    ``state`` ``[B, N, S]`` and, in training, the sampled phase ``offsets`` ``[B]``."""

    obs: Tensor | None
    state: Tensor | None
    offsets: Tensor | None = None


@dataclass
class CurrentChunk:
    """Inference: the chunk this call produces and its cross-attention context (computed once per call)."""

    index: int
    text: tuple


class ChunkLayout:
    """Fixed global token indices of one planner window, so caches filled in earlier calls line up.

    Chunk ``c`` owns ``[clean, noisy, prior]`` tokens at ``c * 3 * chunk``; the planner context of
    chunk ``c`` (``ctx_tokens`` per chunk) follows all action tokens.
    """

    def __init__(self, num_chunks: int, chunk: int):
        self.num_chunks, self.chunk = num_chunks, chunk
        self._masks: dict[tuple, tuple[list[TokenGroup], Tensor]] = {}

    def index(self, kind: str, c: int, device=None) -> Tensor:
        start = (3 * c + KINDS.index(kind)) * self.chunk
        return torch.arange(start, start + self.chunk, device=device)

    def ctx_index(self, c: int, ctx_tokens: int, device=None) -> Tensor:
        start = 3 * self.num_chunks * self.chunk + c * ctx_tokens
        return torch.arange(start, start + ctx_tokens, device=device)

    def groups(self, ctx_tokens: int) -> list[TokenGroup]:
        """Every group of the window in index order."""
        out = []
        for c in range(self.num_chunks):
            out += [TokenGroup(GROUPS[k], self.chunk, STREAMS[k], k == "clean", torch.full((self.chunk,), c))
                    for k in KINDS]
        return out + [TokenGroup("ctx", ctx_tokens, "ctx", True, torch.full((ctx_tokens,), c))
                      for c in range(self.num_chunks)]

    def mask(self, rules: MaskRules, ctx_tokens: int, device=None) -> tuple[list[TokenGroup], Tensor]:
        """The window's groups and their mask under ``rules`` (built once per rules and context size)."""
        key = (id(rules), ctx_tokens, str(device))
        if key not in self._masks:
            groups = self.groups(ctx_tokens)
            self._masks[key] = groups, rules.build(groups, device=device)
        return self._masks[key]


class ActionHistory:
    """Append-only per-layer keys/values of the clean chunks generated in the current planner window."""

    def __init__(self):
        self.cache = KVCache()
        self.chunks = 0

    def append(self, record: KVCache, chunks: int = 1) -> None:
        """Add the keys/values ``record`` holds of the next ``chunks`` clean chunks."""
        for layer in record.keys:
            self.cache.append(layer, record.keys[layer], record.values[layer], record.index[layer])
        self.chunks += chunks


class Executor(FastWAMAction):
    """AHA-WAM's action executor (see module doc).

    Args:
        chunk_size: actions per chunk (paper: 16); one chunk is produced per call at inference.
        num_chunks: chunks per planner window (paper: 4, or 5 with offsets).
        max_offset: training offsets are drawn from ``0..max_offset`` (paper: 15; 0 disables them).
        state_dim: proprioception width (filled from the data); 0 drops the chunk-start proprio token.
        latent_channels: codec channels of the chunk-start observation (filled from the codec).
        ovcr: edit the planner context per chunk (:class:`~wamzoo_aha_wam.ovcr.OVCR`); ``False``
            reads the planner's keys/values unchanged (the "no OVCR" ablation).
        num_queries, gate_init, obs_pool, query_proprio: OVCR's settings (paper: 32, -4, 1, False).
        teacher_forcing: train on ``[clean chunks, noisy chunks]`` (loss ``loss_weights.action``).
        prior_branch: also train the prior branch (loss ``loss_weights.action_prior``).
        infer_branch: ``"prior"`` samples with the prior branch (the released model's sampler);
            ``"history"`` with the teacher-forced branch and the action history (the paper's).
        **kwargs: :class:`~wamzoo_fast_wam.action.FastWAMAction`'s arguments (paper: ActionDiT 1024 x 30,
            24 x 128 heads); its ``horizon`` is the data window, at least ``num_chunks * chunk_size + max_offset``.
    """

    #: Its tokens are laid out per chunk against a planner context, not for a plain shared attention.
    provides = caps("chunk-executor")

    def __init__(self, *, chunk_size: int = 16, num_chunks: int = 4, max_offset: int = 0, state_dim: int = 0,
                 latent_channels: int = 48, ovcr: bool = True, num_queries: int = 32, gate_init: float = -4.0,
                 obs_pool: int = 1, query_proprio: bool = False, teacher_forcing: bool = True,
                 prior_branch: bool = True, infer_branch: str = "prior", **kwargs):
        super().__init__(**kwargs)
        context_dim = kwargs.get("context_dim")  # FastWAMAction's, None by default
        if chunk_size < 1 or num_chunks < 1 or max_offset < 0:
            raise ValueError(f"need chunk_size >= 1, num_chunks >= 1, max_offset >= 0; got {chunk_size},"
                             f" {num_chunks}, {max_offset}")
        if infer_branch not in ("history", "prior"):
            raise ValueError(f"infer_branch must be 'history' or 'prior', got {infer_branch!r}")
        if not (teacher_forcing or prior_branch):
            raise ValueError("train at least one branch: teacher_forcing or prior_branch")
        if (infer_branch == "history" and not teacher_forcing) or (infer_branch == "prior" and not prior_branch):
            raise ValueError(f"infer_branch={infer_branch!r} samples with a branch that is not trained")
        if context_dim is None and state_dim:
            raise ValueError("the chunk-start proprio token joins the cross-attention context: set context_dim")
        check_window(self.horizon, num_chunks * chunk_size, max_offset)
        self.chunk_size, self.num_chunks, self.max_offset = chunk_size, num_chunks, max_offset
        self.teacher_forcing, self.prior_branch, self.infer_branch = teacher_forcing, prior_branch, infer_branch
        self.layout = ChunkLayout(num_chunks, chunk_size)
        self.proprio = nn.Linear(state_dim, context_dim) if state_dim else None
        inner = self.dit.num_heads * self.dit.head_dim
        self.ovcr = (OVCR(latent_channels, context_dim or inner, len(self.dit.blocks), self.dit.num_heads,
                          self.dit.head_dim, num_queries, gate_init, obs_pool, query_proprio) if ovcr else None)

    @property
    def window(self) -> int:
        return self.num_chunks * self.chunk_size

    @property
    def reads_history(self) -> bool:
        return self.infer_branch == "history"

    # -- streams --------------------------------------------------------------------------------
    def make_streams(self, batch, cond, train):
        B = batch.batch_size
        if train:
            check_window(batch.action.shape[1], self.window, self.max_offset)
            offsets = sample_offsets(B, self.max_offset, device=batch.action.device)
            steps = window_steps(offsets, self.window)
            x = gather_steps(batch.action.float(), steps)
            pad = None if batch.action_pad is None else gather_steps(batch.action_pad, steps)
            rgb, state = self._step_observations(batch, chunk_start_steps(offsets, self.num_chunks, self.chunk_size))
            if state is not None and cond.normalizer is not None:
                state = cond.normalizer.normalize("state", state)
            noisy = torch.zeros(B, self.window, dtype=torch.bool, device=x.device)
            streams = {}
            if self.teacher_forcing:
                streams["action"] = Stream(x=x, cond=noisy, group="action", pad=pad, chunk=self.chunk_size)
                streams["action_clean"] = Stream(x=x.clone(), cond=~noisy, group="action", pad=pad, denoised=False)
            if self.prior_branch:
                streams["action_prior"] = Stream(x=x.clone(), cond=noisy.clone(), group="action", pad=pad,
                                                 chunk=self.chunk_size)
        else:
            now = batch.rgb_now  # the present frame when the planner's frames lag (wamzoo eval)
            rgb = batch.rgb_float()[:, batch.n_obs - 1: batch.n_obs] if now is None else \
                (now.float() / 255.0 if now.dtype == torch.uint8 else now.float())
            state = None if cond.state is None else cond.state[:, None]
            x = torch.zeros(B, self.chunk_size, self.action_dim, device=batch.rgb.device)
            streams = {"action": Stream(x=x, cond=torch.zeros(B, self.chunk_size, dtype=torch.bool, device=x.device),
                                        group="action", chunk=self.chunk_size)}
        cond.put(ChunkStarts(self.encode_observation(cond, rgb), state, offsets if train else None))
        return streams

    def _step_observations(self, batch, steps: Tensor) -> tuple[Tensor, Tensor | None]:
        missing = [k for k in ("step_rgb", "step_state") if getattr(batch, k) is None]
        if missing:
            raise BatchError(f"AHA-WAM's executor observes the frame and the proprioception at each chunk's start;"
                             f" the batch lacks {missing}: enable them in the data (data.step_obs: true)")
        rgb = gather_steps(batch.step_rgb, steps)
        rgb = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
        return rgb, gather_steps(batch.step_state.float(), steps)

    def encode_observation(self, cond: Conditioning, rgb: Tensor) -> Tensor | None:
        """Chunk-start frames ``[B, N, V, 3, H, W]`` -> latents ``[B, N, V, C, h, w]``, one frame at a time."""
        if self.ovcr is None:
            return None
        if cond.codec is None:
            raise ValueError("the executor encodes chunk-start observations with the policy's codec (cond.codec)")
        B, N = rgb.shape[:2]
        z = cond.codec.encode(rgb.reshape(B * N, 1, *rgb.shape[2:]))
        return z.reshape(B, N, *z.shape[2:])

    def proprio_tokens(self, state: Tensor | None) -> Tensor | None:
        """Chunk-start proprio ``[B, N, S]`` (normalised) -> context tokens ``[B, N, D_ctx]``."""
        return None if self.proprio is None or state is None else self.proprio(state.to(self.proprio.weight.dtype))

    # -- the planner context as this executor reads it --------------------------------------------
    def read_context(self, keys: list[Tensor], values: list[Tensor], chunks: list[int], obs: Tensor | None,
                     state: Tensor | None) -> KVCache:
        """Per-layer keys/values of the planner context for ``chunks`` (OVCR-edited with each chunk's
        observation ``obs`` ``[B, N, ...]`` / ``state`` ``[B, N, S]``), at the layout's ``ctx`` indices."""
        B, F = keys[0].shape[:2]
        n = len(chunks)
        index = torch.cat([self.layout.ctx_index(c, F, keys[0].device) for c in chunks])
        queries = None
        if self.ovcr is not None:
            queries = self.ovcr.queries(self.ovcr.visual_tokens(obs), self.proprio_tokens(state))
        cache = KVCache()
        for layer, (k0, v0) in enumerate(zip(keys, values)):
            if queries is None:
                k, v = k0[:, None].expand(-1, n, -1, -1, -1), v0[:, None].expand(-1, n, -1, -1, -1)
            else:
                k, v = self.ovcr.edit(layer, queries, k0, v0)
            cache.append(layer, k.reshape(B, n * F, *k.shape[3:]), v.reshape(B, n * F, *v.shape[3:]), index)
        return cache

    def chunk_inputs(self, cond: Conditioning, keys: list[Tensor], values: list[Tensor], c: int, obs: Tensor | None,
                     state: Tensor | None) -> tuple[KVCache, tuple[Tensor | None, Tensor | None]]:
        """What chunk ``c`` reads besides its own tokens and the history: its planner context (one
        chunk's observation ``obs`` / ``state``) and its cross-attention context."""
        return self.read_context(keys, values, [c], obs, state), self.context_for(cond, self.proprio_tokens(state))

    # -- tokens ---------------------------------------------------------------------------------
    def context_for(self, cond: Conditioning, proprio: Tensor | None,
                    tokens_per_chunk: int = 0) -> tuple[Tensor | None, Tensor | None]:
        """Cross-attention context of whole chunks: the task/instruction tokens and each chunk's proprio
        token (``proprio`` ``[B, n, D]``). With several chunks, each token (``tokens_per_chunk`` per
        chunk, chunk-major) reads only its own chunk's proprio token (a ``[B, N, L]`` mask)."""
        parts, masks = [], []
        if cond.context is not None:
            parts.append(cond.context)
            masks.append(cond.context_mask if cond.context_mask is not None
                         else torch.ones(cond.context.shape[:2], dtype=torch.bool, device=cond.context.device))
        if proprio is not None:
            parts.append(proprio)
            masks.append(torch.ones(proprio.shape[:2], dtype=torch.bool, device=proprio.device))
        if not parts or self.dit.condition_embedder.text_embedder is None:
            return None, None
        context, mask = self.dit.condition_embedder.text(torch.cat(parts, 1)), torch.cat(masks, 1)
        n = 0 if proprio is None else proprio.shape[1]
        if n > 1:
            owner = torch.arange(n, device=mask.device).repeat_interleave(tokens_per_chunk)
            own = owner[:, None] == torch.arange(n, device=mask.device)[None]  # [N, n]
            shared = mask[:, None, : mask.shape[1] - n].expand(-1, len(owner), -1)
            mask = torch.cat([shared, mask[:, None, -n:] & own[None]], 2)
        return context, mask

    def chunk_set(self, chunks: Sequence[int], parts: Mapping[str, tuple[Tensor, Tensor]],
                  context: tuple[Tensor | None, Tensor | None], stream: str | None = None) -> TokenSet:
        """Tokens of whole chunks, chunk-major as in the layout: ``parts[kind] = (actions [B, n * chunk,
        A], t [B, n * chunk])`` over the ``n`` chunks ``chunks``, for kinds of :data:`KINDS`; ``context``
        from :meth:`context_for`; ``stream`` names the stream of every part (default: the kind's own)."""
        ch, kinds = self.chunk_size, [k for k in KINDS if k in parts]
        emb = {k: (self.dit.tokens(parts[k][0]), *self.dit.condition_embedder(parts[k][1])) for k in kinds}
        order = [(j, c, k) for j, c in enumerate(chunks) for k in kinds]
        cat = lambda i: torch.cat([emb[k][i][:, j * ch: (j + 1) * ch] for j, _, k in order], 1)  # noqa: E731
        x, temb, mod = cat(0), cat(1), cat(2)
        positions = torch.cat([c * ch + torch.arange(ch, device=x.device) for _, c, _ in order])
        groups = [TokenGroup(GROUPS[k], ch, stream or STREAMS[k], k == "clean", torch.full((ch,), c))
                  for _, c, k in order]
        ts = TokenSet(x, mod, self.dit.rope(positions), self.dit.blocks, groups, temb, *context)
        ts.index = torch.cat([self.layout.index(k, c, x.device) for _, c, k in order])
        return ts

    def clean_set(self, chunks: Sequence[int], actions: Tensor, context: tuple) -> TokenSet:
        """Whole chunks as clean (``t = 0``) tokens: what the action history keeps of generated chunks."""
        return self.chunk_set(chunks, {"clean": (actions, actions.new_zeros(actions.shape[:2]))}, context)

    def embed(self, streams: Mapping[str, Stream], cond: Conditioning) -> list[TokenSet]:
        current = cond.get(CurrentChunk)
        if current is not None:  # inference: the current chunk only
            s = streams["action"]
            kind = "noisy" if self.reads_history else "prior"
            return [self.chunk_set([current.index], {kind: (s.x, s.t)}, current.text, stream="action")]
        parts = {k: (streams[STREAMS[k]].x, streams[STREAMS[k]].t) for k in KINDS if STREAMS[k] in streams}
        context = self.context_for(cond, self.proprio_tokens(cond.get(ChunkStarts).state), len(parts) * self.chunk_size)
        return [self.chunk_set(range(self.num_chunks), parts, context)]

    def head(self, sets, hidden, streams):
        out: dict[str, list[Tensor]] = {}
        for s, h in zip(sets, hidden):
            start = 0
            for g in s.groups:
                if not g.cond:
                    out.setdefault(g.stream, []).append(h[:, start: start + g.size])
                start += g.size
        return {name: self.dit.head(torch.cat(parts, 1)) for name, parts in out.items()}
