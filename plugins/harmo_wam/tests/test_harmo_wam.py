"""HarmoWAM plugin: gate labels, routing, losses, staged training and persistence (tiny configs)."""

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wamzoo
from wamzoo.errors import BatchError
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.training import freeze, load_checkpoint, make_datamodule, train

from wamzoo_harmo_wam.coupling import Imagination
from wamzoo_harmo_wam.gate import contact_labels, episode_contact, mix
from wamzoo_harmo_wam.reactive import ReactiveExpert
from wamzoo_harmo_wam.synthetic import GraspDataModule, episode


@pytest.fixture(scope="module")
def setup():
    recipe = compose("harmo-wam-tiny")
    dm = make_datamodule(recipe)
    info = dm.info()
    batch = next(iter(dm.train_dataloader()))
    return recipe, info, batch


def build(recipe, info, *overrides, seed=0):
    if overrides:
        recipe = compose("harmo-wam-tiny", list(overrides))
    torch.manual_seed(seed)
    return WAMPolicy.from_config(recipe.policy, info)


NAMED = ["harmo-wam-stage1", "harmo-wam", "harmo-wam-average", "harmo-wam-predictive", "harmo-wam-reactive",
         "harmo-wam-pp-stage1", "harmo-wam-pp", "harmo-wam-pp-average", "harmo-wam-pp-predictive",
         "harmo-wam-pp-reactive"]


@pytest.mark.parametrize("name", NAMED)
def test_named_recipes_compose(name):
    recipe = compose(name)
    combine = recipe.policy["action_expert"]["combine"]
    weights = recipe.policy["loss_weights"]
    if name.endswith("stage1"):
        assert weights == {"video": 1.0, "action": 0.0, "react": 0.0, "gate": 0.0} and not recipe.trainer.freeze
        return
    assert recipe.trainer.freeze == ["world_model", "context"]
    assert recipe.trainer.init_from.endswith("stage1") and recipe.trainer.init_from.split("/")[-1] in NAMED
    assert recipe.data["extras"]["contact"]["k"] == 20 and recipe.data["horizon"] == 12
    expected = {"gate": (1.0, 0.1, 0.05), "soft": (1.0, 0.1, 0.05), "predictive": (1.0, 0.0, 0.0),
                "reactive": (0.0, 0.1, 0.0)}[combine]
    assert (weights["action"], weights["react"], weights["gate"]) == expected and weights["video"] == 0.0
    assert {"": "gate", "average": "soft", "predictive": "predictive", "reactive": "reactive"}[
        name.replace("harmo-wam", "").replace("-pp", "").strip("-")] == combine


def test_registered_and_recipes_compose():
    assert {"action_expert:harmo-wam.gated", "coupling:harmo-wam.latent",
            "data:harmo-wam.synthetic-grasp"} <= set(wamzoo.list_components("harmo*"))
    stage2 = compose("harmo-wam-tiny")
    assert stage2.policy["loss_weights"] == {"video": 0.0, "action": 1.0, "react": 0.1, "gate": 0.05}
    assert stage2.trainer.freeze == ["world_model", "context"]
    assert stage2.trainer.init_from == "runs/harmo-wam-tiny-stage1"
    assert stage2.policy["action_expert"]["latent_dim"] == stage2.policy["world_model"]["dim"]
    assert compose("harmo-wam-tiny-stage1").policy["loss_weights"]["video"] == 1.0


# -- gate labels ---------------------------------------------------------------------------------
def test_gate_labels_from_a_synthetic_gripper_trace():
    effort = np.array([-1, -1, -1, -1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1], dtype=np.float32)
    # changes at steps 4 (close) and 10 (open)
    expected = np.zeros(15, np.float32)
    expected[2:7] = 1
    expected[8:13] = 1
    np.testing.assert_array_equal(contact_labels(effort, k=2), expected)
    np.testing.assert_array_equal(np.flatnonzero(contact_labels(effort, k=0)), [4, 10])
    assert contact_labels(effort, k=20).all()
    assert not contact_labels(np.ones(30), k=20).any()  # a constant gripper (reach, mw-easy) has no contact phase
    opening = np.array([1.0, 1.0, 0.8, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])  # a state trace: closed below 0.5
    np.testing.assert_array_equal(np.flatnonzero(contact_labels(-opening, k=1, threshold=-0.5)), [2, 3, 4])
    with pytest.raises(ValueError, match="k must be"):
        contact_labels(effort, k=-1)


def test_episode_contact_as_a_dataset_extra():
    from types import SimpleNamespace

    from wamzoo.data.dataset import step_extras

    effort = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1], np.float32)  # two episodes: 0..4 and 5..9
    action = np.zeros((10, 4), np.float32)
    action[:, 3] = effort
    frames = SimpleNamespace(start=np.repeat([0, 5], 5), end=np.repeat([5, 10], 5), action=action,
                             state=np.zeros((10, 4), np.float32))
    out = step_extras(frames, {"contact": {"fn": "wamzoo_harmo_wam.gate:episode_contact", "k": 1}})
    # per episode: no change is seen across the episode boundary (step 5 starts a new trace)
    np.testing.assert_array_equal(out["contact"], [0, 1, 1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(episode_contact({"action": action[:5]}, k=1), out["contact"][:5])


def test_synthetic_windows_carry_the_labels_of_their_episode():
    dm = GraspDataModule(episodes=2, length=24, k=3, horizon=8)
    ds = dm.dataset()
    labels = contact_labels(episode(0, 24)["action"][:, 3], k=3)
    assert 0 < labels.sum() < len(labels)  # both classes
    got = np.array([float(ds[t]["contact"]) for t in range(24)])
    np.testing.assert_array_equal(got, labels)
    batch = next(iter(dm.train_dataloader()))
    assert batch.extras["contact"].shape == (8,)


# -- losses and staged training --------------------------------------------------------------------
def test_reactive_smooth_l1_with_beta_and_padding():
    expert = ReactiveExpert(action_dim=2, horizon=3, latent_dim=4, backbone="test_convnext", hidden=8)
    assert expert.beta == 0.1
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[0.05, -0.3], [0.1, 0.0], [5.0, 5.0]]])
    valid = torch.tensor([[True, True, False]])
    # |d| < beta: 0.5 d^2 / beta; else |d| - beta / 2
    per_step = torch.tensor([(0.5 * 0.05**2 / 0.1 + (0.3 - 0.05)) / 2, (0.1 - 0.05 + 0.0) / 2])
    torch.testing.assert_close(expert.loss(pred, target, valid), per_step.mean())
    torch.testing.assert_close(expert.loss(pred, target), F.smooth_l1_loss(pred, target, beta=0.1))


def test_stage2_world_model_and_context_get_no_gradient(setup):
    recipe, info, batch = setup
    policy = build(recipe, info)
    freeze(policy, recipe.trainer.freeze)
    loss, logs = policy.compute_loss(batch)
    loss.backward()
    assert set(logs) == {"loss", "loss/action", "loss/react", "loss/gate"}
    frozen = [(n, p) for n, p in policy.named_parameters() if n.startswith(("world_model.", "context."))]
    assert frozen and all(p.grad is None for _, p in frozen)
    for part in ("predictive", "reactive", "gate"):
        grads = [p.grad for p in getattr(policy.action_expert, part).parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, part


def test_stage1_trains_only_the_world_model(setup):
    _, info, batch = setup
    recipe = compose("harmo-wam-tiny-stage1")
    torch.manual_seed(0)
    policy = WAMPolicy.from_config(recipe.policy, info)
    seen = []
    policy.action_expert.predictive.register_forward_hook(lambda *a: seen.append(1))
    loss, logs = policy.compute_loss(batch)
    loss.backward()
    assert set(logs) == {"loss", "loss/video"} and not seen
    assert all(p.grad is None for p in policy.action_expert.parameters())
    assert any(p.grad is not None for p in policy.world_model.parameters())


def test_training_reads_predicted_or_ground_truth_frames(setup, monkeypatch):
    recipe, info, batch = setup
    for frames in ("predicted", "ground_truth"):
        policy = build(recipe, info, f"policy.coupling.train_frames={frames}")
        freeze(policy, ["world_model", "context"])
        captured = {}
        real = policy.action_expert.extra_losses

        def spy(b, streams, outputs, cond):
            captured["im"], captured["video"] = cond.get(Imagination), streams["video"]
            return real(b, streams, outputs, cond)

        monkeypatch.setattr(policy.action_expert, "extra_losses", spy)
        policy.compute_loss(batch)
        im, video = captured["im"], captured["video"]
        torch.testing.assert_close(im.video[:, :1], video.x0[:, :1])  # the observed frame is always the real one
        same_future = torch.equal(im.video[:, 1:], video.x0[:, 1:])
        assert same_future == (frames == "ground_truth")
        assert im.future(1).shape == (8, 1, 1, 3, 32, 32)


def test_gate_labels_are_required(setup):
    recipe, info, batch = setup
    policy = build(recipe, info)
    with pytest.raises(BatchError, match=r"extras\['contact'\].*contact_labels"):
        policy.compute_loss(batch.replace(extras={}))


# -- inference: routing and mixing ---------------------------------------------------------------------
def _forced_gate(policy, monkeypatch, logits):
    monkeypatch.setattr(policy.action_expert, "gate_logits", lambda imagination, cond: logits)


def _spy(monkeypatch, module, calls):
    real = module.forward

    def forward(*args, **kwargs):
        calls.append(args[0].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)


def test_hard_switch_routes_each_sample_to_exactly_one_expert(setup, monkeypatch):
    recipe, info, batch = setup
    policy = build(recipe, info).eval()
    obs = batch.observation()
    contact = torch.tensor([True, False, True, False, False, True, False, False])
    _forced_gate(policy, monkeypatch, torch.where(contact, 4.0, -4.0))
    pred_calls, react_calls = [], []
    _spy(monkeypatch, policy.action_expert.predictive, pred_calls)
    _spy(monkeypatch, policy.action_expert.reactive, react_calls)
    out = policy.predict(obs, generator=torch.Generator().manual_seed(0))
    streams = out["streams"]
    assert react_calls == [int(contact.sum())]                    # the reactive expert ran on its samples only
    assert pred_calls == [int((~contact).sum())] * 3              # every action step ran on the others only
    react, pred = streams["action.reactive"].x, streams["action"].x
    assert torch.all(react[~contact] == 0)                         # no reactive chunk for predictive samples
    chosen = policy.action_expert.actions(streams)
    assert torch.equal(chosen[contact], react[contact]) and torch.equal(chosen[~contact], pred[~contact])
    torch.testing.assert_close(out["action"], policy.normalizer.unnormalize("action", chosen))

    # the same samples through each expert alone give the same chunks
    policy.action_expert.combine = "reactive"
    alone = policy.predict(obs, generator=torch.Generator().manual_seed(0))["streams"]["action.reactive"].x
    torch.testing.assert_close(react[contact], alone[contact], atol=1e-5, rtol=1e-5)
    policy.action_expert.combine = "predictive"
    alone = policy.predict(obs, generator=torch.Generator().manual_seed(0))["streams"]["action"].x
    torch.testing.assert_close(pred[~contact], alone[~contact], atol=1e-5, rtol=1e-5)


def test_soft_average_mixes_both_experts(setup, monkeypatch):
    recipe, info, batch = setup
    policy = build(recipe, info, "policy.action_expert.combine=soft").eval()
    logits = torch.linspace(-2, 2, 8)
    _forced_gate(policy, monkeypatch, logits)
    pred_calls, react_calls = [], []
    _spy(monkeypatch, policy.action_expert.predictive, pred_calls)
    _spy(monkeypatch, policy.action_expert.reactive, react_calls)
    streams = policy.predict(batch.observation(), generator=torch.Generator().manual_seed(0))["streams"]
    assert react_calls == [8] and pred_calls == [8] * 3
    s = torch.sigmoid(logits)[:, None, None]
    react, pred = streams["action.reactive"].x, streams["action"].x
    assert not torch.allclose(react, pred)
    torch.testing.assert_close(policy.action_expert.actions(streams), s * react + (1 - s) * pred)
    policy.action_expert.combine = "mean"
    torch.testing.assert_close(policy.action_expert.actions(streams), (react + pred) / 2)
    with pytest.raises(ValueError, match="unknown mix"):
        mix(react, pred, s[:, 0, 0], "max")


def test_video_must_be_generated_first(setup):
    recipe, info, batch = setup
    policy = build(recipe, info, "policy.scheduler.phases=[{video: 2, action: 3}]").eval()
    with pytest.raises(ValueError, match="generates the future video before the actions"):
        policy.predict_action(batch.observation())


# -- two stages, checkpoints, persistence -------------------------------------------------------------
def _losses(run, key):
    with open(run / "metrics.csv") as f:
        return [float(r[key]) for r in csv.DictReader(f) if r.get(key)]


@pytest.fixture(scope="module")
def two_stages(tmp_path_factory):
    out = tmp_path_factory.mktemp("harmo")
    stage1 = train(compose("harmo-wam-tiny-stage1", ["trainer.max_steps=6", "trainer.log_every=1"]), out_dir=out)
    stage2 = train(compose("harmo-wam-tiny", ["trainer.max_steps=6", "trainer.log_every=1",
                                              f"trainer.init_from={stage1}"]), out_dir=out)
    return stage1, stage2


def test_two_stage_run_keeps_the_stage1_world_model(two_stages):
    stage1, stage2 = two_stages
    assert _losses(stage1, "train/loss/video") and not _losses(stage1, "train/loss/action")
    for key in ("train/loss/action", "train/loss/react", "train/loss/gate"):
        assert all(np.isfinite(_losses(stage2, key))) and _losses(stage2, key), key
    assert not _losses(stage2, "train/loss/video")
    s1 = torch.load(stage1 / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    s2 = torch.load(stage2 / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    frozen = [k for k in s2 if k.startswith(("policy.world_model.", "policy.context."))]
    assert frozen and all(torch.equal(s1[k], s2[k]) for k in frozen)
    trained = [k for k in s2 if k.startswith("policy.action_expert.") and s2[k].is_floating_point()]
    assert any(not torch.equal(s1[k], s2[k]) for k in trained)


def test_save_load_round_trip_gives_identical_actions(two_stages, setup, tmp_path):
    _, stage2 = two_stages
    _, _, batch = setup
    policy = load_checkpoint(stage2 / "checkpoints" / "last.ckpt")
    folder = policy.save_pretrained(tmp_path / "harmo")
    loaded = WAMPolicy.from_pretrained(str(folder))
    obs = batch.observation()
    a = policy.predict(obs, generator=torch.Generator().manual_seed(5))
    b = loaded.predict(obs, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a["action"], b["action"])
    assert torch.equal(a["streams"]["gate"].x, b["streams"]["gate"].x)
    assert "process-adaptive gate" in (folder / "README.md").read_text()  # the plugin's card fragment
