"""AHA-WAM's coupling: Fast-WAM's Mixture-of-Transformers, split into a planner and an executor that
meet through the planner's layerwise context (release: ``MoT.forward_prior_action_with_chunk_updated_kv``,
``AHAWAMChunkBase._build_mot_attention_mask``, ``AHAWAM.prefill_video`` / ``infer_action_chunk``).

Both experts keep their own blocks and share one masked attention per layer, as in Fast-WAM, with
masks declared by rules (:data:`~wamzoo_aha_wam.planner.PER_FRAME_CAUSAL` and
:data:`~wamzoo_aha_wam.executor.CHUNK_CAUSAL`). Video never attends to actions, so a pass is the
planner over its tokens first, recording every layer's keys/values, then the executor over its
tokens against the recorded context of the current frame, edited per chunk by OVCR: exactly the
joint pass. Training: history frames run without gradient as a key/value prefix (as in the code),
then the current and future frames, then all chunks of the window.

Inference (one chunk per call, :mod:`wamzoo_aha_wam.runtime`): :meth:`prefill` obtains the planner
context of the call (refreshing the rolling memory when due, possibly in a background thread) and
edits it for the chunk with the chunk-start observation; :meth:`step` runs only the chunk's tokens
against that cache. With the history sampler (``infer_branch="history"``) the cache also holds the
window's action history, and :meth:`finish` appends the clean chunk to it with one more executor
pass.

>>> import wamzoo
>>> coupling = wamzoo.create("coupling", "aha-wam.mot", refresh_every=2)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from wamzoo.composition import caps
from wamzoo.couplings import MoTCoupling, needed_tokens
from wamzoo.nn.attention import KVCache
from wamzoo.nn.mot import assign_indices, run_layers

from wamzoo_aha_wam.executor import CHUNK_CAUSAL, ActionHistory, ChunkStarts, CurrentChunk, Executor
from wamzoo_aha_wam.memory import PlannerContext, RollingMemory, refresh
from wamzoo_aha_wam.planner import PER_FRAME_CAUSAL
from wamzoo_aha_wam.runtime import Executed, Runtime


@dataclass
class ChunkContext:
    """What a call's denoising steps read: the chunk's planner context joined with the window's
    history (``cache``), the chunk's own planner context and cross-attention context (``inputs``,
    reused by the pass that appends the chunk to the history), and the per-layer cross-attention
    keys/values of that context (``context_kv``, computed at the first step, fixed for the call)."""

    cache: KVCache
    chunk: int
    inputs: tuple
    context_kv: dict = field(default_factory=dict)


def hide_padding(mask: torch.Tensor, pad: torch.Tensor | None, tokens) -> torch.Tensor:
    """Per-sample mask ``[B, N, N]`` in which only a padded frame's own tokens attend to it (``pad``
    ``[B, frames]``: history frames before an episode's start), or ``mask`` itself without padding.
    The current frame then sees at an episode's start what it sees at inference: itself alone."""
    if pad is None or not bool(pad.any()):
        return mask
    grid = tokens.meta["grid"]
    per = grid[1] * grid[2]
    if not torch.equal(tokens.index.cpu(), torch.arange(mask.shape[-1])):
        raise ValueError("hide_padding expects the video tokens to be the whole mask, in frame order")
    frame = torch.arange(mask.shape[-1], device=mask.device) // per
    padded = pad.to(mask.device).repeat_interleave(per, 1)                     # [B, N] keys of padded frames
    hidden = padded[:, None, :] & (frame[:, None] != frame[None, :])[None]   # other frames' queries
    return mask[None] & ~hidden


def joined(*caches: KVCache) -> KVCache:
    """One cache holding every layer's keys/values of ``caches`` (in order)."""
    out = KVCache()
    for cache in caches:
        for layer in cache.keys:
            out.append(layer, cache.keys[layer], cache.values[layer], cache.index[layer])
    return out


class AHAWAMCoupling(MoTCoupling):
    """AHA-WAM's planner/executor coupling (see module doc).

    Args:
        refresh_every: chunks between planner refreshes at inference (paper: 2); with history
            frames, the data's ``frame_stride`` must equal ``refresh_every * chunk_size`` steps.
        pipelined: adopt each refresh ``refresh_every`` chunks after its frame (asynchronous
            schedule); ``False`` refreshes synchronously before the chunk.
        background: compute pipelined refreshes in a background thread.
        frame_stride: environment steps between the data's frames (filled from the data).
        grad_checkpoint: recompute each layer in the backward pass.
    """

    requires = {"world_model": caps("tokens", "video", "frame-tokens"), "action_expert": caps("chunk-executor")}
    uncached_reference = False  # a chunk is produced against the rolling memory kept across calls

    def __init__(self, refresh_every: int = 2, pipelined: bool = True, background: bool = True,
                 frame_stride: int = 1, grad_checkpoint: bool = False):
        super().__init__({**PER_FRAME_CAUSAL, **CHUNK_CAUSAL}, grad_checkpoint)
        self.runtime = Runtime(refresh_every, pipelined, background)
        self.frame_stride = frame_stride
        self.memory: RollingMemory | None = None  # the planner frames of the episode (memory.py)
        self._call: ChunkContext | None = None  # the chunk being produced (prefill .. finish)

    @staticmethod
    def _check(planner, executor: Executor) -> None:
        shapes = {(len(m.dit.blocks), m.dit.num_heads, m.dit.head_dim) for m in (planner, executor)}
        if len(shapes) > 1:
            raise ValueError(f"the planner and the executor must share layers and heads x head_dim for one attention"
                             f" per layer, got {sorted(shapes)}")

    # -- training ---------------------------------------------------------------------------------
    def planner_pass(self, planner, streams, cond) -> tuple[dict, list, list]:
        """The planner over its window: video velocities (if needed) and the current frame's per-layer K/V."""
        video = streams["video"]
        vset = planner.token_set(video, "video", cond)
        groups = assign_indices([vset])
        mask = hide_padding(self.rules.build(groups, device=vset.x.device), video.pad, vset)
        kinds = torch.cat([torch.full((g.size,), ("hist", "cond", "future").index(g.name.split(".")[-1]))
                           for g in groups]).to(mask.device)
        layers = len(planner.dit.blocks)
        prefix = None
        if bool((kinds == 0).any()):
            prefix = KVCache()
            with torch.no_grad():
                run_layers([vset.select(kinds == 0)], mask, layers, record=prefix)
        run = (kinds > 0) if cond.needs("video") else (kinds == 1)
        record = KVCache()
        h = run_layers([vset.select(run)], mask, layers, cache=prefix, record=record,
                       grad_checkpoint=self.grad_checkpoint and self.training)[0]
        out = {}
        if cond.needs("video"):
            full = h.new_zeros(vset.x.shape)
            full[:, run] = h
            out = planner.head([vset], [full], streams)
        current = vset.index[kinds == 1]
        keys, values = [], []
        for layer in range(layers):
            sel = torch.isin(record.index[layer], current)
            keys.append(record.keys[layer][:, sel])
            values.append(record.values[layer][:, sel])
        return out, keys, values

    def executor_pass(self, executor: Executor, streams, cond, keys: list, values: list) -> dict:
        """Every chunk of the window (teacher-forced and prior branches) against the planner context."""
        wanted = {k for k in ("action", "action_prior") if k in streams and cond.needs(k)}
        if not wanted:
            return {}
        starts = cond.get(ChunkStarts)
        context = executor.read_context(keys, values, list(range(executor.num_chunks)), starts.obs, starts.state)
        sets = executor.embed(streams, cond)
        groups, mask = executor.layout.mask(self.rules, keys[0].shape[1], keys[0].device)
        run = needed_tokens(mask, self.seed_tokens(groups, wanted, mask.device))
        return self.run_tokens(None, executor, sets, 0, mask, len(keys), run, wanted, streams, cache=context)

    def forward(self, world_model, action_expert, streams, cond):
        self._check(world_model, action_expert)
        out, keys, values = self.planner_pass(world_model, streams, cond)
        out.update(self.executor_pass(action_expert, streams, cond, keys, values))
        return out

    # -- inference --------------------------------------------------------------------------------
    def _append(self, ex: Executor, history: ActionHistory, ctx: KVCache, clean, ctx_tokens: int) -> None:
        """One executor pass over whole clean chunks (the token set ``clean``) against their planner
        context ``ctx`` and the history; their keys/values join the history."""
        _, mask = ex.layout.mask(self.rules, ctx_tokens, ctx.keys[0].device)
        record = KVCache()
        run_layers([clean], mask, len(clean.blocks), cache=joined(ctx, history.cache), record=record)
        history.append(record, clean.num_tokens // ex.chunk_size)

    def prefill(self, world_model, action_expert, streams, cond, active):
        planner, ex = world_model, action_expert
        self._check(planner, ex)
        rt = self.runtime
        video = streams["video"]
        n_obs = int(video.cond[0].sum())  # the current frame and the history frames before it
        if n_obs > 1 and self.frame_stride != rt.refresh_every * ex.chunk_size:
            raise ValueError(f"the planner's history frames are {self.frame_stride} steps apart (data.frame_stride)"
                             f" but it is refreshed every {rt.refresh_every} chunks of {ex.chunk_size} steps; make"
                             " them equal so the rolling memory holds what training showed")
        if rt.pipelined and ex.num_chunks < 2 * rt.refresh_every:
            raise ValueError(f"a pipelined refresh every {rt.refresh_every} chunks serves chunks up to"
                             f" {2 * rt.refresh_every - 1} of a window; the executor's window has {ex.num_chunks}")
        frame = video.x[:, n_obs - 1: n_obs]

        def plan(between_layers):
            if self.memory is None:
                self.memory = RollingMemory(size=n_obs - 1)
            return refresh(planner, self.memory, frame, cond, between_layers)

        def rebuild(context: PlannerContext, executed: list[Executed]) -> ActionHistory:
            """The history of ``context``'s window: the executed chunks, encoded in one clean pass."""
            history = ActionHistory()
            if ex.reads_history and executed:
                cat = lambda xs: None if xs[0] is None else torch.cat(xs, 1)  # noqa: E731
                obs, state = cat([d.observation for d in executed]), cat([d.state for d in executed])
                chunks = list(range(len(executed)))
                ctx = ex.read_context(context.keys, context.values, chunks, obs, state)
                text = ex.context_for(cond, ex.proprio_tokens(state), ex.chunk_size)
                clean = ex.clean_set(chunks, torch.cat([d.actions for d in executed], 1), text)
                self._append(ex, history, ctx, clean, context.keys[0].shape[1])
            return history

        context, c = rt.begin(plan, rebuild)
        if c >= ex.num_chunks:
            raise ValueError(f"chunk {c} of a planner window of {ex.num_chunks} chunks; refresh the planner more often")
        starts = cond.get(ChunkStarts)
        inputs = ex.chunk_inputs(cond, context.keys, context.values, c, starts.obs, starts.state)
        cond.put(CurrentChunk(c, inputs[1]))
        self._call = ChunkContext(joined(inputs[0], rt.history.cache) if ex.reads_history else inputs[0], c, inputs)
        return self._call

    def step(self, world_model, action_expert, streams, cond, active, context):
        if context is None:  # no prefill: the uncached reference path does not exist for one chunk
            raise ValueError("AHA-WAM's executor runs against its prefilled chunk context")
        sets = action_expert.embed(streams, cond)
        sets[0].context_kv = context.context_kv
        _, mask = action_expert.layout.mask(self.rules, context.inputs[0].keys[0].shape[1], sets[0].x.device)
        run = torch.ones(mask.shape[0], dtype=torch.bool, device=mask.device)
        return self.run_tokens(world_model, action_expert, sets, 0, mask, len(sets[0].blocks), run, set(active), streams,
                         cache=context.cache)

    def finish(self, world_model, action_expert, streams, cond):
        rt, ex = self.runtime, action_expert
        starts = cond.get(ChunkStarts)
        done = Executed(ex.actions(streams), starts.obs, starts.state)
        if ex.reads_history:
            ctx, text = self._call.inputs
            clean = ex.clean_set([self._call.chunk], done.actions, text)
            self._append(ex, rt.history, ctx, clean, ctx.keys[0].shape[1])
        self._call = None
        rt.end(done)

    def reset(self) -> None:
        self.runtime.reset()  # waits for a background refresh before the memory is forgotten
        self.memory = None

    # -- timing -----------------------------------------------------------------------------------
    def timings(self) -> dict[str, float]:
        """The executor per chunk with the planner context cached, the planner per refresh, and the
        amortised time per chunk with the refresh counted, since the last reset (:meth:`Runtime.stats`)."""
        return self.runtime.stats()

    def wait_idle(self) -> None:
        """Finish background planner work (``wamzoo bench latency`` calls it between timed calls)."""
        self.runtime.wait_idle()

    def extra_repr(self) -> str:
        rt = self.runtime
        return f"refresh_every={rt.refresh_every}, pipelined={rt.pipelined}, background={rt.background}"
