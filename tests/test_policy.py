"""WAMPolicy on the core's tiny composition, and a conformance check over every registered component."""

import json

import pytest
import torch

from wamzoo.batch import Batch
from wamzoo.errors import BatchError, LoadError
from wamzoo.plugins import get_plugins
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.registry import COMPONENT_KINDS
from wamzoo.training import make_datamodule


@pytest.fixture(scope="module")
def setup():
    recipe = compose("tiny-mot")
    dm = make_datamodule(recipe)
    info = dm.info()
    torch.manual_seed(0)
    policy = WAMPolicy.from_config(recipe.policy, info)
    batch = next(iter(dm.train_dataloader()))
    return policy, batch, info, recipe


def test_loss_decreases(setup):
    policy, batch, info, recipe = setup
    policy = WAMPolicy.from_config(recipe.policy, info)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        loss, logs = policy.compute_loss(batch, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(logs) == {"loss", "loss/video", "loss/action"}
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5]), losses


def test_predict_shapes_determinism_and_units(setup):
    policy, batch, info, _ = setup
    policy.eval()
    obs = batch.observation()
    a = policy.predict_action(obs, generator=torch.Generator().manual_seed(1))
    b = policy.predict_action(obs, generator=torch.Generator().manual_seed(1))
    assert a.shape == batch.action.shape and torch.equal(a, b)
    out = policy.predict(obs, generator=torch.Generator().manual_seed(1))
    normalised = policy.action_expert.actions(out["streams"])
    torch.testing.assert_close(policy.normalizer.normalize("action", out["action"]), normalised)


def test_cached_inference_equals_uncached(setup, monkeypatch):
    policy, batch, _, _ = setup
    policy.eval()
    obs = batch.observation()
    seen = []
    real = policy.coupling.prefill

    def spy(*args, **kwargs):
        ctx = real(*args, **kwargs)
        seen.append(ctx)
        return ctx

    monkeypatch.setattr(policy.coupling, "prefill", spy)
    cached = policy.predict_action(obs, generator=torch.Generator().manual_seed(2))
    assert seen and seen[0] is not None and seen[0].keep.sum() > 0  # the video was prefilled
    monkeypatch.setattr(policy.coupling, "prefill", lambda *a, **k: None)
    uncached = policy.predict_action(obs, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=1e-5)


def test_bad_observations_are_named(setup):
    policy, batch, _, _ = setup
    with pytest.raises(BatchError, match=r"rgb must be \[B, T, V, 3, H, W\]"):
        policy.predict_action(batch.replace(rgb=batch.rgb[:, 0]))
    with pytest.raises(BatchError, match="needs `task_id`"):
        policy.predict_action(batch.observation().replace(task_id=None))
    with pytest.raises(BatchError, match="state must have shape"):
        policy.predict_action(batch.observation().replace(state=batch.state[:1]))
    with pytest.raises(BatchError, match="task_id out of range"):
        policy.predict_action(batch.observation().replace(task_id=batch.task_id + 5))


def test_save_load_round_trip_and_strict_errors(setup, tmp_path):
    policy, batch, _, _ = setup
    policy.eval()
    obs = batch.observation()
    folder = policy.save_pretrained(tmp_path / "p")
    loaded = WAMPolicy.from_pretrained(str(folder))
    a = policy.predict_action(obs, generator=torch.Generator().manual_seed(3))
    b = loaded.predict_action(obs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)

    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "wamzoo_schema": 99}))
    with pytest.raises(LoadError, match="schema 99.*upgrade wamzoo"):
        WAMPolicy.from_pretrained(str(folder))
    (folder / "config.json").write_text(json.dumps(cfg))

    from safetensors.torch import load_file, save_file
    state = load_file(str(folder / "model.safetensors"))
    bad = dict(state)
    bad.pop(next(iter(bad)))
    bad["extra.weight"] = torch.zeros(1)
    save_file(bad, str(folder / "model.safetensors"))
    with pytest.raises(LoadError, match="1 missing.*1 unexpected: extra.weight"):
        WAMPolicy.from_pretrained(str(folder))
    key = next(k for k, v in state.items() if v.ndim == 2)
    save_file({**state, key: torch.zeros(3, 3)}, str(folder / "model.safetensors"))
    with pytest.raises(LoadError, match="wrong shape"):
        WAMPolicy.from_pretrained(str(folder))
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(LoadError, match="not a readable safetensors"):
        WAMPolicy.from_pretrained(str(folder))
    (folder / "stats.json").unlink()
    with pytest.raises(LoadError, match="no stats.json"):
        WAMPolicy.from_pretrained(str(folder))


def _build(entry):
    return entry.obj(**entry.tiny)


@pytest.mark.parametrize("entry", get_plugins().registry.entries(kind=COMPONENT_KINDS), ids=lambda e: f"{e.kind}:{e.name}")
def test_every_registered_component_builds_from_its_tiny_config(entry):
    obj = _build(entry)
    if entry.kind == "codec":
        frames = torch.rand(1, 5, 2, 3, 32, 32)
        z = obj.encode(frames)
        assert z.shape[:3] == (1, obj.latent_frames(5), 2) and z.shape[3] == obj.latent_channels
        assert obj.decode(z).shape == frames.shape
    elif entry.kind == "data":
        info = obj.describe()
        assert info.action_dim > 0
    elif entry.kind == "scheduler":
        assert obj.plan()
    else:
        assert isinstance(obj, torch.nn.Module)


def test_a_call_without_a_generator_is_seeded_per_sample():
    """Like LeRobot's inference seed: without a generator every sample draws from ``seed`` (default 0), so a call
    repeats, and a sample's actions do not depend on what else is in the batch; ``seed=None`` is torch's RNG."""
    from wamzoo.testing import tiny_policy

    policy, batch = tiny_policy("tiny-mot")
    obs = batch.observation()
    first = policy.eval().predict_action(obs)
    assert torch.equal(first, policy.predict_action(obs))
    torch.testing.assert_close(policy.predict_action(obs.index([1])), first[1:2], atol=1e-5, rtol=0)
    assert not torch.equal(policy.predict_action(obs, seed=1), first)
    assert not torch.equal(policy.predict_action(obs, seed=None), policy.predict_action(obs, seed=None))


def test_keypoint_context_reads_the_present_frame_and_trains(setup):
    """``policy.context.keypoints``: the present frame's keypoints join the context; the action loss trains them."""
    _, batch, info, recipe = setup
    torch.manual_seed(0)
    policy = WAMPolicy.from_config({**recipe.policy, "context": {**recipe.policy["context"], "keypoints": 3}}, info)
    cond = policy.condition(batch)
    plain = WAMPolicy.from_config(recipe.policy, info).condition(batch)
    assert cond.context.shape[1] == plain.context.shape[1] + 3 * info.num_views
    future = batch.rgb.clone()
    future[:, batch.n_obs:] = 0  # only the present frame is read
    torch.testing.assert_close(policy.condition(batch.replace(rgb=future)).context, cond.context)
    loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert policy.context.keypoints.convs[0].weight.grad.abs().sum() > 0
    obs = batch.observation()
    policy.eval()
    assert policy.predict_action(obs).shape == batch.action.shape
