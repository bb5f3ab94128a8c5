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
2. **Build the policy** from a recipe-style ``policy`` section and a :class:`~wamzoo.policy.DataInfo`
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
(pickles: :func:`wamzoo.hub.load_upstream_pickle`, weights-only).
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
    (:class:`~wamzoo.policy.DataInfo`, statistics included), loaded strictly from ``converted``.

    ``upstream`` (facts about the release: its files, settings wamzoo does not apply) is kept in
    ``policy.config["upstream"]`` and in the recipe record saved with the policy.
    """
    from wamzoo.policy import WAMPolicy

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
    from wamzoo.normalize import STATS

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
