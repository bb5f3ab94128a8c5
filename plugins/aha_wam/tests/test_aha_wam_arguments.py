"""AHA-WAM's planner and executor take Fast-WAM's arguments through ``**kwargs``: the registry follows
them (checks, close matches, facts filled from the data), and recipes compose the core's shared sizes."""

import pytest
from omegaconf import OmegaConf

from wamzoo.errors import RecipeError
from wamzoo.plugins import get_plugins
from wamzoo.recipes import compose, find_recipe
from wamzoo.registry import ConfigError
from wamzoo.testing import tiny_policy


def test_unknown_and_inherited_arguments():
    reg = get_plugins().registry
    with pytest.raises(ConfigError, match=r"unknown argument 'dimm' for world_model 'fast-wam.video'.*Did you mean: dim"):
        reg.create("world_model", "fast-wam.video", latent_channels=4, dimm=32)
    planner = reg.create("world_model", "aha-wam.planner", latent_channels=4, dim=32, num_heads=2, history=1,
                         frame_stride=8, video_rope_frame_stride=4)
    assert (planner.dit.dim, planner.history, planner.rope_frame_stride) == (32, 1, 2.0)
    with pytest.raises(ConfigError, match=r"argument 'num_layers' of world_model 'aha-wam.planner' expects int"):
        reg.create("world_model", "aha-wam.planner", latent_channels=4, num_layers="two")
    with pytest.raises(ConfigError, match=r"unknown argument 'rope_frame_strid' .*Did you mean: .*rope_frame_stride"):
        reg.create("world_model", "aha-wam.planner", latent_channels=4, rope_frame_strid=2.0)
    # the planner derives rope_frame_stride itself, so it is not one of its arguments
    with pytest.raises(ConfigError, match=r"unknown argument 'rope_frame_stride'"):
        reg.create("world_model", "aha-wam.planner", latent_channels=4, rope_frame_stride=2.0)
    with pytest.raises(ConfigError, match=r"action_expert 'aha-wam.executor' needs argument\(s\) action_dim, horizon"):
        reg.create("action_expert", "aha-wam.executor")
    with pytest.raises(RecipeError, match=r"policy.action_expert: unknown argument 'num_layer'.*Did you mean: num_layers"):
        compose("aha-wam-tiny", ["policy.action_expert.num_layer=3"])


def test_data_facts_reach_inherited_arguments():
    policy, batch = tiny_policy("aha-wam-tiny")
    info, planner, executor = policy.info, policy.world_model, policy.action_expert
    assert planner.dit.in_channels == policy.codec.latent_channels and planner.num_views == info.num_views
    assert planner.frame_stride == policy.coupling.frame_stride == info.frame_stride == 8
    assert (executor.action_dim, executor.horizon) == (info.action_dim, info.horizon) == (batch.action.shape[-1], 19)


def test_aha_wam_takes_the_shared_sizes_by_replacing_the_core_experts():
    """base/tiny.yaml names the planner and executor over the core's dit.video and dit.action of
    wamzoo/configs/shared/tiny.yaml: replacing a component keeps the arguments it takes, and drops nothing."""
    shared = OmegaConf.to_container(OmegaConf.load(find_recipe("shared/tiny")))["policy"]
    for recipe in ("aha-wam-tiny", "aha-wam"):
        r = compose(recipe)
        assert r.notes == []
        assert r.policy["world_model"]["name"] == "aha-wam.planner"
        assert r.policy["action_expert"]["name"] == "aha-wam.executor"
    r = compose("aha-wam-tiny")
    for part in ("world_model", "action_expert"):
        assert {k: v for k, v in shared[part].items() if k != "name"}.items() <= r.policy[part].items()
