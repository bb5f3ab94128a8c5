"""Fast-WAM's attention masks, token group by token group, for the three variants."""

import pytest
import torch

from wamzoo_fast_wam.masks import COND_VIDEO

# (query group, key group) -> may attend; every other pair of present groups must be hidden.
EXPECTED = {
    "default": {("video.cond", "video.cond"), ("video.future", "video.cond"), ("video.future", "video.future"),
                ("action", "action"), ("action", "video.cond")},
    "joint": {("video.cond", "video.cond"), ("video.future", "video.cond"), ("video.future", "video.future"),
              ("action", "action"), ("action", "video.cond"), ("action", "video.future")},
    "idm": {("video.cond", "video.cond"), ("video.future", "video.cond"), ("video.future", "video.future"),
            (f"{COND_VIDEO}.cond", f"{COND_VIDEO}.cond"), (f"{COND_VIDEO}.future", f"{COND_VIDEO}.cond"),
            (f"{COND_VIDEO}.future", f"{COND_VIDEO}.future"),
            ("action", "action"), ("action", f"{COND_VIDEO}.cond"), ("action", f"{COND_VIDEO}.future")},
}
ORDER = {"default": ["video.cond", "video.future", "action"], "joint": ["video.cond", "video.future", "action"],
         "idm": ["video.cond", "video.future", f"{COND_VIDEO}.cond", f"{COND_VIDEO}.future", "action"]}


def _mask(build, variant):
    policy, batch = build(variant)
    streams, cond = policy.build_streams(batch, train=True)
    policy.coupling.prepare(streams, train=True, generator=torch.Generator().manual_seed(0))
    policy.scheduler.sample_timesteps(streams, torch.Generator().manual_seed(0))
    return policy.coupling.attention_mask(policy.world_model, policy.action_expert, streams, cond), streams


def _code_reference(variant, per_frame, frames, actions):
    """The public code's masks rebuilt by index arithmetic (``_build_mot_attention_mask`` and the IDM's)."""
    V = per_frame * frames
    video = torch.ones(V, V, dtype=torch.bool)
    video[:per_frame, per_frame:] = False  # first_frame_causal
    if variant == "idm":
        m = torch.zeros(2 * V + actions, 2 * V + actions, dtype=torch.bool)
        m[:V, :V] = video
        m[V:2 * V, V:2 * V] = video
        m[2 * V:, 2 * V:] = True
        m[2 * V:, V:2 * V] = True
        return m
    m = torch.zeros(V + actions, V + actions, dtype=torch.bool)
    m[:V, :V] = video
    m[V:, V:] = True
    m[V:, :per_frame if variant == "default" else V] = True
    return m


@pytest.mark.parametrize("variant", ["default", "joint", "idm"])
def test_mask_group_by_group(fast_wam, variant):
    (mask, groups), _ = _mask(fast_wam, variant)
    assert [g.name for g in groups] == ORDER[variant]
    starts = torch.tensor([0] + [g.size for g in groups]).cumsum(0).tolist()
    for i, gq in enumerate(groups):
        for j, gk in enumerate(groups):
            block = mask[starts[i]:starts[i + 1], starts[j]:starts[j + 1]]
            if (gq.name, gk.name) in EXPECTED[variant]:
                assert block.all(), f"{variant}: {gq.name} must see all of {gk.name}"
            else:
                assert not block.any(), f"{variant}: {gq.name} must not see {gk.name}"


@pytest.mark.parametrize("variant", ["default", "joint", "idm"])
def test_video_never_attends_to_action(fast_wam, variant):
    (mask, groups), _ = _mask(fast_wam, variant)
    n_action = sum(g.size for g in groups if g.stream == "action")
    n_video = mask.shape[0] - n_action
    assert n_action == groups[-1].size and not mask[:n_video, n_video:].any()


@pytest.mark.parametrize("variant", ["default", "joint", "idm"])
def test_mask_equals_the_public_codes_construction(fast_wam, variant):
    (mask, groups), streams = _mask(fast_wam, variant)
    frames = streams["video"].units
    per_frame = groups[0].size  # one observed frame
    assert torch.equal(mask, _code_reference(variant, per_frame, frames, streams["action"].units))


def test_unknown_variant_is_named():
    import wamzoo

    with pytest.raises(ValueError, match="unknown Fast-WAM variant 'jiont'.*default, joint, idm"):
        wamzoo.create("coupling", "fast-wam.mot", variant="jiont")
