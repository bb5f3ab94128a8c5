"""Which parts compose: capabilities that components declare, checked before anything is built.

Every part of a WAM (world model, action expert, coupling, scheduler) declares, as class
attributes, what it offers to the others (``provides``) and what it needs of each other part
(``requires``, by role). A recipe composes when every requirement is met; otherwise it is refused
when composed (``wamzoo recipe show``, ``wamzoo train``, ``WAMPolicy(...)``) with a message naming
both parts and what is missing. Capabilities are promises about methods, so nothing is probed at
run time:

================== ============================================================================
capability         the component implements
================== ============================================================================
``tokens``         ``embed(streams, cond) -> list[TokenSet]`` and ``head(sets, hidden, streams)``:
                   its streams join a shared (Mixture-of-Transformers) attention
``backbone``       world model: ``backbone(cond) -> Backbone`` lends its blocks to an expert
                   without a transformer of its own (it arrives as ``cond.backbone``)
``video``          world model: produces the ``video`` stream of latent frames
``depth``          world model: produces the ``depth`` stream
``frame-tokens``   world model: ``token_set(stream, name, cond) -> TokenSet`` of any run of latent
                   frames (one frame's tokens after another, groups ``{name}.cond`` and
                   ``{name}.future``, frames ``rope_frame_stride`` apart in RoPE time, Wan blocks in
                   ``dit``), so a coupling can run it a frame at a time (AHA-WAM's rolling memory)
``chunk-executor`` action expert: reads a planner context per action chunk (``read_context``,
                   ``chunk_inputs``, ``clean_set``, ``layout``; AHA-WAM's executor)
``latent-reader``  action expert: reads a world model's latent (``route``, ``predictive_velocity``,
                   ``wants_imagination``, ``uses``; HarmoWAM's gated experts)
================== ============================================================================

>>> check({"world_model": FastWAMVideo, "action_expert": XWAMAction, ...})   # doctest: +SKIP
"""

from __future__ import annotations

from typing import ClassVar, Iterable, Mapping

from wamzoo.errors import WamzooError

#: The four roles of a WAM, in the order they are reported.
ROLES: tuple[str, ...] = ("world_model", "action_expert", "coupling", "scheduler")

CAPABILITIES: dict[str, str] = {
    "tokens": "joins a shared attention (embed/head)",
    "backbone": "lends its transformer blocks to an expert without one",
    "video": "produces the video stream",
    "depth": "produces the depth stream",
    "frame-tokens": "embeds any run of latent frames, a frame at a time if need be (token_set)",
    "chunk-executor": "reads a planner context per action chunk",
    "latent-reader": "reads a world model's latent (gated predictive/reactive experts)",
}


class CompositionError(WamzooError, ValueError):
    """Parts whose declared capabilities do not fit; the message names both parts and what is missing."""


class Declares:
    """Mixin of every part: its declared capabilities (class attributes, inherited and extendable)."""

    #: Capabilities this part offers to the others (see the module's table).
    provides: ClassVar[frozenset[str]] = frozenset()
    #: What this part needs of the others, by role: ``{"world_model": frozenset({"tokens"})}``.
    requires: ClassVar[Mapping[str, frozenset[str]]] = {}


def caps(*names: str) -> frozenset[str]:
    """A capability set; unknown names are a programming error caught at import time."""
    unknown = [n for n in names if n not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capabilities {unknown}; known: {sorted(CAPABILITIES)}")
    return frozenset(names)


def problems(parts: Mapping[str, type], names: Mapping[str, str] | None = None) -> list[str]:
    """Every unmet requirement among ``parts`` (role -> class), one sentence each."""
    names = dict(names or {})
    label = lambda role: f"{role} {names.get(role, parts[role].__name__)!r}"  # noqa: E731
    found = []
    for role in [r for r in ROLES if r in parts] + [r for r in parts if r not in ROLES]:
        for other, needed in getattr(parts[role], "requires", {}).items():
            if other not in parts:
                continue
            have = frozenset(getattr(parts[other], "provides", ()))
            missing = sorted(set(needed) - have)
            if missing:
                found.append(f"{label(role)} needs {_article(other)} {other.replace('_', ' ')} that provides"
                             f" {_describe(missing)}, but {label(other)} provides {', '.join(sorted(have)) or 'nothing'}")
    return found


def check(parts: Mapping[str, type], names: Mapping[str, str] | None = None) -> None:
    """Raise :class:`CompositionError` if the declared capabilities of ``parts`` do not fit."""
    found = problems(parts, names)
    if found:
        hint = " `wamzoo list --compatible NAME` shows what combines with a component."
        raise CompositionError("these parts do not compose: " + "; ".join(found) + "." + hint)


def compatible(role: str, cls: type, candidates: Mapping[str, Iterable[tuple[str, type]]]) -> dict[str, list[str]]:
    """For a component of ``role``, the names among ``candidates`` (role -> (name, class)) that fit it
    pairwise: neither requires of the other what it does not provide."""
    out: dict[str, list[str]] = {}
    for other, entries in candidates.items():
        if other == role:
            continue
        out[other] = [name for name, c in entries if not problems({role: cls, other: c})]
    return out


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"


def _describe(missing: list[str]) -> str:
    return " and ".join(f"{m!r} ({CAPABILITIES[m]})" if m in CAPABILITIES else repr(m) for m in missing)
