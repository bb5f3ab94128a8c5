"""MoTCoupling skips tokens nothing needed attends to; conditioning-only streams keep a preset time."""

import torch

from wamzoo.couplings import needed_tokens
from wamzoo.interfaces import Stream
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.schedulers import FlowMatchingScheduler
from wamzoo.training import make_datamodule


def test_needed_tokens_is_the_attention_closure():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 0] = mask[1, :2] = mask[3, 3] = True  # 1 -> 0, 0 -> 0, 3 alone
    assert needed_tokens(mask, torch.tensor([False, True, False, False])).tolist() == [True, True, False, False]
    assert needed_tokens(mask, torch.tensor([False, False, False, True])).tolist() == [False, False, False, True]


def _policy_and_streams(seed=0):
    recipe = compose("tiny-mot")
    dm = make_datamodule(recipe)
    torch.manual_seed(seed)
    policy = WAMPolicy.from_config(recipe.policy, dm.info())
    batch = next(iter(dm.train_dataloader()))
    streams, cond = policy.build_streams(batch, train=True)
    policy.scheduler.sample_timesteps(streams, torch.Generator().manual_seed(0))
    return policy, streams, cond


def test_unneeded_stream_is_skipped_and_outputs_unchanged(monkeypatch):
    policy, streams, cond = _policy_and_streams()
    full = policy.coupling(policy.world_model, policy.action_expert, streams, cond)
    ran = []
    real = policy.world_model.dit.blocks[0].attention_inputs

    def spy(x, *a, **k):
        ran.append(x.shape[1])
        return real(x, *a, **k)

    monkeypatch.setattr(policy.world_model.dit.blocks[0], "attention_inputs", spy)
    cond.loss_weights = {"video": 0.0}
    part = policy.coupling(policy.world_model, policy.action_expert, streams, cond)
    assert set(part) == {"action"}
    per_frame = streams["video"].x.shape[-1] * streams["video"].x.shape[-2] // 4  # 2x2 DiT patches
    assert ran == [per_frame]  # only the current frame, which the action attends to, was run
    torch.testing.assert_close(part["action"], full["action"], atol=1e-6, rtol=1e-6)


def test_conditioning_stream_keeps_preset_time():
    x = torch.zeros(2, 3, 1)
    cond = torch.zeros(2, 3, dtype=torch.bool)
    preset = torch.full((2, 3), 0.25)
    streams = {"a": Stream(x=x, cond=cond, group="action"),
               "c": Stream(x=x, cond=cond, denoised=False, t=preset.clone()),
               "d": Stream(x=x, cond=cond, denoised=False)}
    FlowMatchingScheduler().sample_timesteps(streams, torch.Generator().manual_seed(0))
    assert torch.equal(streams["c"].t, preset)
    assert torch.equal(streams["d"].t, torch.zeros(2, 3))


def test_steps_reuse_the_prefill_and_the_context_keys_values(monkeypatch):
    policy, streams, cond = _policy_and_streams()
    policy.eval()
    batch = next(iter(make_datamodule(compose("tiny-mot")).train_dataloader()))
    obs = batch.observation()
    action_blocks = policy.action_expert.dit.blocks
    context_kv, video_embeds = [], []
    real_kv, real_embed = action_blocks[0].attn2.kv, policy.world_model.embed
    monkeypatch.setattr(action_blocks[0].attn2, "kv", lambda c: context_kv.append(1) or real_kv(c))
    monkeypatch.setattr(policy.world_model, "embed", lambda *a: video_embeds.append(1) or real_embed(*a))
    cached = policy.predict_action(obs, generator=torch.Generator().manual_seed(0))
    steps = policy.scheduler.plan()[0].steps["action"]
    assert len(context_kv) == 1  # cross-attention keys/values of the fixed context: once, not per step
    assert len(video_embeds) == 1  # the video is embedded for the prefill only
    monkeypatch.setattr(policy.coupling, "prefill", lambda *a, **k: None)
    uncached = policy.predict_action(obs, generator=torch.Generator().manual_seed(0))
    assert len(context_kv) == 1 + steps
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=1e-5)
