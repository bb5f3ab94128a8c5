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
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose, list_recipes

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
    from wamzoo.testing import tiny_policy

    recipe, overrides = compositions()[case]
    return tiny_policy(recipe, overrides)


def _seeded(policy: WAMPolicy, obs, seed: int = 0, **kwargs) -> torch.Tensor:
    policy.reset()
    return policy.predict(obs, generator=torch.Generator().manual_seed(seed), **kwargs)["action"]


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


def _with_depth(policy: WAMPolicy, batch):
    """``batch`` with metric depth (1-2 m) where the world model produces depth and the data has none."""
    if batch.depth is not None or "depth" not in policy.world_model.provides:
        return batch
    B, T, V, _, H, W = batch.rgb.shape
    return batch.replace(depth=1.0 + torch.rand(B, T, V, 1, H, W, generator=torch.Generator().manual_seed(0)))


def test_gradients_reach_every_trainable_parameter(built):
    """Every loss at weight 1 (an ablation's zero weight switches a part off on purpose)."""
    case, policy, batch = built
    batch = _with_depth(policy, batch)
    weights, policy.loss_weights = policy.loss_weights, {}
    policy.train()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    for seed in range(2):  # zero-initialised output layers (e.g. OVCR's edit) pass gradient after a step
        opt.zero_grad()
        policy.compute_loss(batch, generator=torch.Generator().manual_seed(seed))[0].backward()
        opt.step()
    policy.zero_grad()
    for seed in range(3):  # timesteps and noise differ per batch (e.g. ANS's clean-action case)
        loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(seed))
        assert torch.isfinite(loss), f"{case}: loss {loss}"
        loss.backward()
    trainable = {n: p for n, p in policy.named_parameters() if p.requires_grad}
    missing = [n for n, p in trainable.items() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    policy.loss_weights = weights
    assert not missing, f"{case}: no gradient reaches {len(missing)} trainable parameter(s), e.g. {missing[:6]}"


def test_loss_decreases_on_one_batch(built):
    case, policy, batch = built
    policy.train()
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)

    def loss_now():
        return policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))[0]

    first = float(loss_now().detach())
    for _ in range(20):
        opt.zero_grad()
        loss_now().backward()
        opt.step()
    last = float(loss_now().detach())
    assert last < 0.9 * first, f"{case}: loss {first:.4f} -> {last:.4f} after 20 steps"


def test_same_seed_same_actions_and_cached_equals_uncached(built):
    case, policy, batch = built
    policy.eval()
    obs = batch.observation()
    a = _seeded(policy, obs)
    assert torch.isfinite(a).all()
    assert torch.equal(a, _seeded(policy, obs)), f"{case}: two calls with one seed differ"
    if policy.coupling.uncached_reference:
        torch.testing.assert_close(_seeded(policy, obs, cache=False), a, atol=1e-5, rtol=0,
                                   msg=lambda m: f"{case}: cached != uncached: {m}")


def test_save_load_same_actions(built, tmp_path):
    case, policy, batch = built
    policy.eval()
    obs = batch.observation()
    policy.save_pretrained(tmp_path / "saved")
    loaded = WAMPolicy.from_pretrained(str(tmp_path / "saved"))
    assert torch.equal(_seeded(loaded, obs), _seeded(policy, obs)), f"{case}: actions change after save -> load"


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
