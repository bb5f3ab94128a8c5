"""Machinery for converters of released checkpoints: key mapping with strict accounting.

A converter turns the files of an upstream release into a :class:`~wamzoo.policy.WAMPolicy`
(registered with the ``register_converters`` hook). Three steps, each strict:

1. **Map the weights.** A :class:`StateMap` is an ordered list of rules; each upstream key is
   handled by the first rule that matches it (a regex, matched against the whole key)::

       m = StateMap("fast-wam release")
       m.rename(r"mixtures\\.video\\.blocks\\.(\\d+)\\.self_attn\\.q\\.(weight|bias)",
                r"world_model.dit.blocks.\\1.attn1.to_q.\\2")
       m.prefix("proprio_encoder.", "context.proprio.")
       m.split(r"(.*)\\.qkv\\.weight", [r"\\1.to_q.weight", r"\\1.to_k.weight", r"\\1.to_v.weight"])
       m.reshape(r"(.*)\\.modulation", r"\\1.scale_shift_table", (1, 6, -1))
       m.drop(r"optimizer\\..*", "training state, not needed to act")
       converted = m.apply(upstream_state)

   :class:`Converted` remembers which upstream key filled which parameter, which keys were
   dropped (always with a reason) and which no rule matched.
2. **Build the policy** from a recipe-style ``policy`` section and a :class:`~wamzoo.data.info.DataInfo`
   (views, resolution, horizon, statistics) derived from the upstream config.
3. **Load strictly** (:func:`load_converted`): every upstream key must be consumed and every
   parameter of the policy filled, except under ``provided`` prefixes that the construction
   itself fills (the codec's own pretrained VAE, the normaliser's statistics). Otherwise ONE
   :class:`~wamzoo.errors.LoadError` lists every leftover upstream key, every unfilled parameter,
   every name the model does not have and every shape mismatch — never a silently untrained model.

:func:`build_policy` does 2 and 3. :func:`complete_stats` turns upstream statistics into the six
statistics the :class:`~wamzoo.normalize.Normalizer` stores (those a mode does not use, if the
upstream release lacks them, are stored as NaN, so a policy can never silently use invented
values). :func:`read_json` and :func:`read_safetensors` read upstream files with clear errors
(pickles: :func:`wamzoo.hub.load_weights_only`, weights-only).

Formats several plugins meet are here too: Wan2.2 / DiffSynth weight names (:data:`WAN_BLOCK`,
:data:`WAN_EMBED`, :meth:`StateMap.wan_blocks`), the checkpoint payload and statistics file of the
Fast-WAM code base that AHA-WAM builds on (:func:`read_mot_payload`, :func:`linear_normalizer_stats`)
and the DiffSynth RoPE split (:func:`check_diffsynth_rope`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from wamzoo.errors import LoadError
from wamzoo.normalize import STATS
from wamzoo.policy import WAMPolicy

#: Parameters a converted policy gets from its own construction, not from the checkpoint:
#: the codec (e.g. the pretrained Wan VAE, which releases do not contain) and the normaliser's
#: statistics (filled from the release's statistics file).
PROVIDED = ("codec.", "normalizer.")

Transform = Callable[[Tensor], "Tensor | Sequence[Tensor]"]


@dataclass
class Rule:
    """One mapping rule: upstream keys matching ``pattern`` become ``targets`` (regex templates)."""

    pattern: re.Pattern
    targets: tuple[str, ...]
    transform: Transform | None = None
    reason: str = ""  # for rules without targets (dropped keys)

    def describe(self) -> str:
        if not self.targets:
            return f"drop /{self.pattern.pattern}/ ({self.reason})"
        return f"/{self.pattern.pattern}/ -> {', '.join(self.targets)}"


@dataclass
class Converted:
    """The result of :meth:`StateMap.apply`."""

    source: str
    state: dict[str, Tensor] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)     # wamzoo name -> upstream key
    dropped: dict[str, str] = field(default_factory=dict)    # upstream key -> reason
    unused: list[str] = field(default_factory=list)          # upstream keys no rule matched
    clashes: list[str] = field(default_factory=list)         # several upstream keys -> one name
    failed: list[str] = field(default_factory=list)          # transforms that did not fit

    def problems(self, own: Mapping[str, Tensor], provided: Sequence[str] = ()) -> list[str]:
        """Everything that keeps the mapped state from filling ``own`` exactly, one line per kind."""
        provided = tuple(provided)
        missing = sorted(k for k in own if k not in self.state and not k.startswith(provided))
        unknown_names = sorted(k for k in self.state if k not in own)
        shapes = sorted(f"{k} (from {self.origin.get(k, '?')}): checkpoint {tuple(self.state[k].shape)}"
                        f" vs model {tuple(own[k].shape)}"
                        for k in self.state if k in own and tuple(self.state[k].shape) != tuple(own[k].shape))
        lines = []
        for label, items in (("upstream keys not consumed by any rule", self.unused),
                             ("wamzoo parameters not filled", missing),
                             ("mapped to names the model does not have", unknown_names),
                             ("shape mismatches", shapes),
                             ("upstream keys mapped onto the same name", self.clashes),
                             ("transforms failed", self.failed)):
            if items:
                lines.append(f"{len(items)} {label}: {summarize(items)}")
        return lines


class StateMap:
    """Ordered rename rules from upstream keys to wamzoo parameter names.

    Patterns are regular expressions matched against the whole upstream key; targets are
    templates expanded with the match (``\\1``, ``\\g<name>``). The first matching rule wins, so
    put specific rules before general ones.
    """

    def __init__(self, name: str = "checkpoint"):
        self.name = name
        self.rules: list[Rule] = []

    # -- rules ------------------------------------------------------------------------------
    def rename(self, pattern: str, target: str, transform: Callable[[Tensor], Tensor] | None = None) -> "StateMap":
        """``pattern`` -> ``target``; ``transform`` changes the tensor on the way (e.g. a transpose)."""
        self.rules.append(Rule(re.compile(pattern), (target,), transform))
        return self

    def prefix(self, old: str, new: str) -> "StateMap":
        """Every key starting with ``old`` keeps its tail under ``new``."""
        return self.rename(re.escape(old) + r"(.*)", new.replace("\\", "\\\\") + r"\1")

    def split(self, pattern: str, targets: Sequence[str], dim: int = 0,
              sizes: Sequence[int] | None = None) -> "StateMap":
        """A fused tensor (e.g. ``qkv``) split along ``dim`` into ``targets`` (equal parts or ``sizes``)."""
        n = len(targets)

        def _split(t: Tensor) -> Sequence[Tensor]:
            if sizes is None:
                if t.shape[dim] % n:
                    raise ValueError(f"dimension {dim} of size {t.shape[dim]} does not split into {n} equal parts")
                return t.chunk(n, dim=dim)
            if sum(sizes) != t.shape[dim]:
                raise ValueError(f"sizes {list(sizes)} do not add up to dimension {dim} of size {t.shape[dim]}")
            return t.split(list(sizes), dim=dim)

        self.rules.append(Rule(re.compile(pattern), tuple(targets), _split))
        return self

    def reshape(self, pattern: str, target: str, shape: Sequence[int]) -> "StateMap":
        """``pattern`` -> ``target`` reshaped to ``shape`` (one ``-1`` allowed), e.g. a flat modulation."""
        return self.rename(pattern, target, lambda t: t.reshape(tuple(shape)))

    def drop(self, pattern: str, reason: str) -> "StateMap":
        """Upstream keys that are consumed but deliberately not loaded; ``reason`` says why."""
        if not reason:
            raise ValueError("a dropped key needs a reason (it is reported with the conversion)")
        self.rules.append(Rule(re.compile(pattern), (), None, reason))
        return self

    def wan_blocks(self, src_block: str, dst_blocks: str) -> "StateMap":
        """Rules for transformer blocks in Wan2.2 / DiffSynth naming (:data:`WAN_BLOCK`).

        ``src_block`` is a regex of a block's key prefix with one group, the layer index (e.g.
        ``r"mot\\.mixtures\\.video\\.blocks\\.(\\d+)\\."``); ``dst_blocks`` the wamzoo prefix of
        the block list (``"world_model.dit.blocks."``).
        """
        for src, dst in WAN_BLOCK:
            self.rename(rf"{src_block}{re.escape(src)}\.(weight|bias)", rf"{dst_blocks}\1.{dst}.\2")
        return self.rename(rf"{src_block}modulation", rf"{dst_blocks}\1.scale_shift_table")

    def wan_embeddings(self, src_prefix: str, dst_prefix: str) -> "StateMap":
        """Rules for a Wan model's text/time embeddings (:data:`WAN_EMBED`) under the literal ``src_prefix``."""
        for src, dst in WAN_EMBED:
            self.rename(rf"{re.escape(src_prefix + src)}\.(weight|bias)", rf"{dst_prefix}{dst}.\1")
        return self

    def extend(self, other: "StateMap") -> "StateMap":
        self.rules.extend(other.rules)
        return self

    # -- applying ---------------------------------------------------------------------------
    def rule_for(self, key: str) -> tuple[Rule, re.Match] | None:
        for rule in self.rules:
            m = rule.pattern.fullmatch(key)
            if m is not None:
                return rule, m
        return None

    def apply(self, state: Mapping[str, Any], source: str | None = None) -> Converted:
        """Map ``state`` (upstream key -> tensor); nothing is raised here, see :meth:`Converted.problems`."""
        out = Converted(source or self.name)
        for key, value in state.items():
            found = self.rule_for(key)
            if found is None:
                out.unused.append(key)
                continue
            rule, m = found
            if not rule.targets:
                out.dropped[key] = rule.reason
                continue
            if not isinstance(value, Tensor):
                out.failed.append(f"{key}: expected a tensor, got {type(value).__name__}")
                continue
            names = [m.expand(t) for t in rule.targets]
            try:
                produced = value if rule.transform is None else rule.transform(value)
            except (RuntimeError, ValueError) as exc:
                out.failed.append(f"{key}: {exc}")
                continue
            tensors = [produced] if isinstance(produced, Tensor) else list(produced)
            if len(tensors) != len(names):
                out.failed.append(f"{key}: the transform gave {len(tensors)} tensors for {len(names)} targets")
                continue
            for name, tensor in zip(names, tensors):
                if name in out.state:
                    out.clashes.append(f"{out.origin[name]} and {key} -> {name}")
                    continue
                out.state[name] = tensor
                out.origin[name] = key
        return out

    def __repr__(self) -> str:
        return f"StateMap({self.name!r}, {len(self.rules)} rules)"


# -- loading ---------------------------------------------------------------------------------
def load_converted(module: nn.Module, converted: Converted, provided: Sequence[str] = PROVIDED) -> None:
    """Load ``converted`` into ``module`` strictly; parameters under ``provided`` keep their values.

    Raises one :class:`LoadError` naming every leftover upstream key, unfilled parameter, unknown
    name and shape mismatch.
    """
    own = module.state_dict()
    problems = converted.problems(own, provided)
    if problems:
        raise LoadError(f"{converted.source} cannot be converted exactly; nothing was loaded.\n  "
                        + "\n  ".join(problems))
    state = {k: v for k, v in own.items() if k not in converted.state}
    with torch.no_grad():
        state.update({k: v.to(own[k].dtype) for k, v in converted.state.items()})
    module.load_state_dict(state, strict=True)


def build_policy(policy: Mapping[str, Any], info, converted: Converted, provided: Sequence[str] = PROVIDED,
                 upstream: Mapping[str, Any] | None = None):
    """A :class:`~wamzoo.policy.WAMPolicy` from a recipe-style ``policy`` section and ``info``
    (:class:`~wamzoo.data.info.DataInfo`, statistics included), loaded strictly from ``converted``.

    ``upstream`` (facts about the release: its files, settings wamzoo does not apply) is kept in
    ``policy.config["upstream"]`` and in the recipe record saved with the policy.
    """
    if not info.stats:
        raise LoadError(f"{converted.source}: no normalisation statistics; a converted policy needs the"
                        " release's statistics (it would act blind without them)")
    model = WAMPolicy.from_config(policy, info)
    load_converted(model, converted, provided)
    record = {"source": converted.source, "dropped": dict(converted.dropped), **dict(upstream or {})}
    model.config["upstream"] = record
    model.config["recipe"] = {"policy": model.config["policy"], "data": info.to_dict(), "upstream": record}
    return model.eval()


# -- statistics ------------------------------------------------------------------------------
#: The statistics each normalisation mode reads (see :mod:`wamzoo.normalize`).
MODE_STATS = {"min_max": ("min", "max"), "quantile": ("q01", "q99"), "mean_std": ("mean", "std"), "identity": ()}


def complete_stats(stats: Mapping[str, Any], mode: str, what: str = "statistics") -> dict[str, list[float]]:
    """The six statistics of the :class:`~wamzoo.normalize.Normalizer` from upstream ``stats``.

    The statistics ``mode`` reads must be present (else :class:`LoadError`); the others are copied
    when present and stored as NaN when the release lacks them.
    """
    if mode not in MODE_STATS:
        raise LoadError(f"{what}: unknown normalisation mode {mode!r}; wamzoo has {', '.join(MODE_STATS)}")
    missing = [s for s in MODE_STATS[mode] if stats.get(s) is None]
    if missing:
        raise LoadError(f"{what}: mode {mode!r} needs {', '.join(MODE_STATS[mode])} but the release lacks"
                        f" {', '.join(missing)} (has {', '.join(sorted(stats)) or 'nothing'})")
    values = {s: torch.as_tensor(stats[s], dtype=torch.float64).flatten() for s in STATS if stats.get(s) is not None}
    dims = {tuple(v.shape) for v in values.values()}
    if len(dims) > 1:
        raise LoadError(f"{what}: statistics of different lengths {sorted(dims)}")
    n = next(iter(dims))[0] if dims else 0
    return {s: values[s].tolist() if s in values else [math.nan] * n for s in STATS}


# -- reading upstream files -------------------------------------------------------------------
def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LoadError(f"{path} is not valid JSON ({exc}); re-download it") from None


def read_safetensors(path: str | os.PathLike) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoadError(f"{path} is not a readable safetensors file ({exc}); re-download it") from None


def need_file(files: Mapping[str, Path], name: str, converter: str) -> Path:
    """``files[name]`` or a clear error naming what the converter expected."""
    if name not in files:
        raise LoadError(f"converter {converter!r} needs the file {name!r}; got {sorted(files)}")
    return Path(files[name])


# -- upstream formats shared by several plugins ------------------------------------------------
#: A transformer block in the naming of Wan2.2's ``WanAttentionBlock`` (also DiffSynth's ``DiTBlock``,
#: used by the Fast-WAM, AHA-WAM and X-WAM code) -> diffusers ``WanTransformerBlock`` = wamzoo
#: ``DiTBlock``. ``norm3`` is the affine cross-attention LayerNorm there and ``norm2`` here; the
#: affine-free ``norm1`` / ``norm2`` (before self-attention / FFN) have no weights. ``modulation``
#: ``[1, 6, D]`` -> ``scale_shift_table`` (same order: shift, scale, gate for attention, then FFN).
WAN_BLOCK = (("self_attn.q", "attn1.to_q"), ("self_attn.k", "attn1.to_k"), ("self_attn.v", "attn1.to_v"),
             ("self_attn.o", "attn1.to_out.0"), ("self_attn.norm_q", "attn1.norm_q"),
             ("self_attn.norm_k", "attn1.norm_k"),
             ("cross_attn.q", "attn2.to_q"), ("cross_attn.k", "attn2.to_k"), ("cross_attn.v", "attn2.to_v"),
             ("cross_attn.o", "attn2.to_out.0"), ("cross_attn.norm_q", "attn2.norm_q"),
             ("cross_attn.norm_k", "attn2.norm_k"),
             ("norm3", "norm2"), ("ffn.0", "ffn.net.0.proj"), ("ffn.2", "ffn.net.2"))

#: A Wan model's embeddings -> diffusers ``WanTimeTextImageEmbedding`` (wamzoo ``TimeTextEmbedding``).
#: (A video model's ``patch_embedding`` keeps its name; ``head.head`` / ``head.modulation`` become
#: ``proj_out`` / ``scale_shift_table``.)
WAN_EMBED = (("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
             ("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
             ("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
             ("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
             ("time_projection.1", "condition_embedder.time_proj"))


def check_diffsynth_rope(head_dim: int, source: str) -> None:
    """DiffSynth's ``precompute_freqs_cis_3d`` splits a head into ``(d - 2(d//3), d//3, d//3)`` RoPE
    channels (frame, height, width), Wan2.2 / diffusers / wamzoo into ``(d - 4(d//6), 2(d//6), 2(d//6))``.
    They agree for d = 128 (the released models), not for every d; refuse the others."""
    if head_dim // 3 != 2 * (head_dim // 6):
        raise LoadError(f"{source}: head_dim {head_dim} splits RoPE channels differently in the upstream code"
                        f" ({head_dim // 3} per spatial axis) and in wamzoo ({2 * (head_dim // 6)}); such a"
                        " checkpoint cannot be represented")


def read_mot_payload(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A checkpoint written by ``save_checkpoint`` of the Fast-WAM code base (Fast-WAM, AHA-WAM):
    ``{"mot": MoT.state_dict(), "proprio_encoder": ..., "step", "torch_dtype"[, "optimizer"]}``
    (AHA-WAM adds ``action_obs_visual_proj`` and ``chunk_obs_query_encoder`` state dicts), read
    weights-only. Returns the flat state (``<entry>.<key>`` for every state-dict entry, e.g.
    ``mot.mixtures.video.blocks.0.self_attn.q.weight``; any other entry is kept under its own name so
    that it is reported as not consumed unless a rule takes it), the metadata (``step``,
    ``torch_dtype``) and the dropped entries (the optimizer state)."""
    from wamzoo.hub import load_weights_only

    payload = load_weights_only(path)
    name = Path(path).name
    if not isinstance(payload, Mapping) or "mot" not in payload:
        raise LoadError(f"{name}: expected the dict written by save_checkpoint with a 'mot' entry, got"
                        f" {type(payload).__name__} {sorted(payload) if isinstance(payload, Mapping) else ''}")
    state: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for key, value in payload.items():
        if key == "optimizer":
            dropped[key] = "optimizer state (training only)"
        elif isinstance(value, Mapping):
            state.update({f"{key}.{k}": v for k, v in value.items()})
        elif key in ("step", "torch_dtype"):
            meta[key] = value if value is None or isinstance(value, (int, float, str)) else str(value)
        else:
            state[key] = value
    return state, meta, dropped


#: ``norm_default_mode`` of the Fast-WAM code base's ``LinearNormalizer`` -> wamzoo mode.
LINEAR_NORMALIZER_MODES = {"min/max": "min_max", "q01/q99": "quantile", "z-score": "mean_std"}
_RANGE_TOL, _STD_REG = 1e-4, 1e-8  # SingleFieldLinearNormalizer.range_tol / std_reg


def linear_normalizer_stats(raw: Mapping[str, Any], mode: str, source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """wamzoo statistics and modes reproducing the Fast-WAM code base's ``LinearNormalizer``
    (Fast-WAM, AHA-WAM) from its ``dataset_stats.json``.

    The file holds ``{"action"|"state": {key: {"global_<s>", "stepwise_<s>"}}, "num_episodes",
    "num_transition"}``; the ``global_*`` statistics are used (``use_stepwise_action_norm: false``).
    The code's affine is kept exactly: in ``min/max`` / ``q01/q99`` a dimension whose range is below
    1e-4 maps to ``x - lo`` (stored as ``[lo - 1, lo + 1]``); ``z-score`` divides by ``std + 1e-8``
    (stored as that std). Its clamp of normalised values to [-5, 5] is not represented.
    """
    if mode not in LINEAR_NORMALIZER_MODES:
        raise LoadError(f"{source}: normalisation mode {mode!r} cannot be represented; wamzoo reproduces"
                        f" {', '.join(LINEAR_NORMALIZER_MODES)}")
    extra = sorted(set(raw) - {"action", "state", "num_episodes", "num_transition"})
    if extra:
        raise LoadError(f"{source}: unknown entries {extra} in the statistics file")
    wmode = LINEAR_NORMALIZER_MODES[mode]
    stats, modes = {}, {}
    for group in ("action", "state"):
        entries = raw.get(group)
        if not isinstance(entries, Mapping) or len(entries) != 1:
            raise LoadError(f"{source}: expected one merged {group!r} key in the statistics (the released"
                            f" configs merge one 'default' key), got {list(entries or {})}")
        (key, entry), = entries.items()
        unknown = sorted(k for k in entry if not re.fullmatch(r"(global|stepwise)_(min|max|mean|std|q01|q99)", k))
        if unknown:
            raise LoadError(f"{source}: unknown statistics {unknown} for {group}.{key}")
        s = {k[len("global_"):]: torch.as_tensor(v, dtype=torch.float64) for k, v in entry.items()
             if k.startswith("global_")}
        if wmode in ("min_max", "quantile"):
            lo_k, hi_k = ("min", "max") if wmode == "min_max" else ("q01", "q99")
            if lo_k in s and hi_k in s:
                flat = (s[hi_k] - s[lo_k]) < _RANGE_TOL
                s[hi_k] = torch.where(flat, s[lo_k] + 1.0, s[hi_k])
                s[lo_k] = torch.where(flat, s[lo_k] - 1.0, s[lo_k])
        elif "std" in s:
            s["std"] = s["std"] + _STD_REG
        stats[group] = complete_stats({k: v.tolist() for k, v in s.items()}, wmode, f"{source} {group}")
        modes[group] = wmode
    return stats, modes


# -- reporting -------------------------------------------------------------------------------
def summarize(keys: Iterable[str], limit: int = 24) -> str:
    """All ``keys``, listed in full when few; else grouped by their pattern with numbers as ranges
    (``blocks.{0-29}.ffn.0.weight``), so every key is still named."""
    keys = list(keys)
    if len(keys) <= limit:
        return ", ".join(keys)
    groups: dict[str, list[tuple[int, ...]]] = {}
    for k in keys:
        nums = tuple(int(n) for n in re.findall(r"(?<=\.)\d+(?=\.|$)", k))
        pattern = re.sub(r"(?<=\.)\d+(?=\.|$)", "#", k)
        groups.setdefault(pattern, []).append(nums)
    parts = []
    for pattern, nums in groups.items():
        for i in range(pattern.count("#")):
            values = sorted({n[i] for n in nums})
            pattern = pattern.replace("#", str(values[0]) if len(values) == 1 else "{" + _ranges(values) + "}", 1)
        parts.append(pattern)
    return ", ".join(parts)


def _ranges(values: list[int]) -> str:
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i == len(values) - 1 or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)
