"""The conformance suite, parametrised over the registry: every registered part runs in a tiny composition.

Each tiny recipe (``tiny-mot`` and every ``*-tiny``; mixes included) is one composition, and every
registered world model, action expert, coupling, scheduler and codec must appear in one (a component
no tiny recipe uses is substituted into ``tiny-mot`` with its registered ``tiny`` arguments; if that
does not compose, :func:`test_every_component_has_a_tiny_composition` fails and names it). On each:

- forward + backward, with a gradient reaching every trainable parameter over a few batches;
- the loss decreasing over a few dozen optimiser steps on one batch (fixed noise and timesteps);
- cached == uncached inference (<= 1e-5) for couplings that declare an uncached reference;
- identical actions for an identical seed, and save -> load -> identical actions;
- and every ``*-paper`` recipe's parts build at the paper's size on the meta device.
"""

from __future__ import annotations

import functools

import pytest
import torch

from wamzoo.composition import ROLES
from wamzoo.plugins import get_plugins
from wamzoo.recipes import compose, list_recipes
from wamzoo.testing import (check_gradients, check_inference, check_loss_decreases, check_precision, check_save_load,
                            tiny_policy)

KINDS = ROLES + ("codec",)
BASE = "tiny-mot"


@functools.lru_cache(maxsize=None)
def _uses() -> dict[str, set[tuple[str, str]]]:
    """Tiny recipe -> the (kind, name) of every part it composes."""
    out = {}
    for name in [BASE] + [r for r in list_recipes("*-tiny")]:
        policy = compose(name).policy
        out[name] = {(k, policy[k]["name"]) for k in KINDS if k in policy}
    return out


@functools.lru_cache(maxsize=None)
def compositions() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Case id -> (recipe, overrides): every tiny recipe, plus ``tiny-mot`` with each component no
    tiny recipe uses substituted in (its registered ``tiny`` arguments)."""
    cases = {name: (name, ()) for name in _uses()}
    covered = set().union(*_uses().values())
    for entry in get_plugins().registry.entries():
        if entry.kind in KINDS and (entry.kind, entry.name) not in covered:
            args = [f"policy.{entry.kind}.{k}={v}" for k, v in entry.tiny.items()]
            cases[f"{BASE}+{entry.name}"] = (BASE, (f"policy.{entry.kind}.name={entry.name}", *args))
    return cases


def _build(case: str):
    recipe, overrides = compositions()[case]
    return tiny_policy(recipe, overrides)


def test_every_component_has_a_tiny_composition():
    """A component is covered the moment it registers: it must compose into a tiny recipe."""
    failures = []
    for case, (recipe, overrides) in compositions().items():
        if overrides:
            try:
                compose(recipe, list(overrides))
            except Exception as exc:  # noqa: BLE001 - reported below with the component's name
                failures.append(f"{case}: {str(exc).splitlines()[0]}")
    assert not failures, ("components without a tiny composition (ship a `<plugin>-...-tiny` recipe that uses"
                          " them, or fix their registered `tiny` arguments):\n" + "\n".join(failures))


@pytest.fixture(scope="module", params=sorted(compositions()))
def built(request):
    torch.manual_seed(0)
    try:
        policy, batch = _build(request.param)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{request.param} does not build: {exc}")
    return request.param, policy, batch


def test_gradients_reach_every_trainable_parameter(built):
    """Every loss at weight 1 (an ablation's zero weight switches a part off on purpose)."""
    case, policy, batch = built
    check_gradients(policy, batch, case)


def test_loss_decreases_on_one_batch(built):
    case, policy, batch = built
    check_loss_decreases(policy, batch, case=case)


def test_same_seed_same_actions_cached_equals_uncached_batched_equals_alone(built):
    case, policy, batch = built
    check_inference(policy, batch, case)


def test_save_load_same_actions(built, tmp_path):
    case, policy, batch = built
    check_save_load(policy, batch, tmp_path / "saved", case)


def test_bfloat16_actions_near_float32(built):
    case, _, batch = built
    torch.manual_seed(0)
    check_precision(_build(case)[0], batch, case=case)  # a policy of its own: this one changes precision


PAPER_FACTS = {"action_dim": 7, "state_dim": 8, "horizon": 32, "num_views": 2, "latent_channels": 48,
               "n_obs": 1, "n_future": 2, "frame_stride": 4, "future_frames": 8, "num_tasks": 1}


@pytest.mark.parametrize("recipe", list_recipes("*-paper"))
def test_paper_size_builds_on_the_meta_device(recipe):
    composed = compose(recipe)
    policy, data = composed.policy, composed.data
    reg = get_plugins().registry
    facts = {**PAPER_FACTS, **{k: data[k] for k in ("horizon", "n_future", "frame_stride") if k in data},
             "context_dim": policy.get("context", {}).get("dim", 64)}
    for part in ROLES:
        cfg = dict(policy[part])
        entry = reg.get(part, cfg.pop("name"))
        cfg.update({k: v for k, v in facts.items() if k in entry.parameters() and k not in cfg})
        if part == "scheduler":  # no weights: built as is
            reg.create(part, entry.name, **cfg)
            continue
        with torch.device("meta"):
            built = reg.create(part, entry.name, **cfg)
        assert all(p.is_meta for p in built.parameters())
