"""The Meta-World environment: fresh seeded layouts, disjoint seed splits, cameras and metric depth."""

import numpy as np
import pytest
import torch

from wamzoo.geometry import lift, project

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def reach():
    from wamzoo.envs.metaworld import MetaWorldEnv

    env = MetaWorldEnv("reach-v3", cameras=("oblique", "top", "corner"), height=48, width=48)
    yield env
    env.close()


def test_seeds_draw_fresh_layouts_deterministically(reach):
    from wamzoo.envs.metaworld import MetaWorldEnv

    obs_a, info_a = reach.reset(seed=11)
    obs_b, info_b = reach.reset(seed=12)
    goal_a, goal_b = info_a["privileged"][-3:], info_b["privileged"][-3:]
    assert np.linalg.norm(goal_a - goal_b) > 1e-3            # the goal moved
    assert not np.allclose(info_a["layout"], info_b["layout"])
    assert not np.array_equal(obs_a["rgb"], obs_b["rgb"])    # and it shows
    obs_c, info_c = reach.reset(seed=11)
    assert np.array_equal(info_a["layout"], info_c["layout"]) and np.array_equal(obs_a["rgb"], obs_c["rgb"])
    blind = MetaWorldEnv("reach-v3", cameras=())
    layouts = {tuple(blind.reset(seed=s)[1]["layout"].round(6)) for s in range(60)}
    assert len(layouts) == 60                                 # not Meta-World's 50 fixed layouts
    blind.close()


def test_training_and_evaluation_seeds_never_meet(reach):
    from wamzoo.envs.metaworld import EVAL_SEEDS, TRAIN_SEEDS, MetaWorldEnv, SeedError, check_seeds

    assert TRAIN_SEEDS.stop <= EVAL_SEEDS.start
    with pytest.raises(SeedError, match="train seeds must lie in"):
        reach.reset(seed=EVAL_SEEDS.start)
    with pytest.raises(SeedError, match="eval seeds must lie in"):
        check_seeds([EVAL_SEEDS.start - 1], "eval")
    env = MetaWorldEnv("reach-v3", cameras=(), split="eval")
    with pytest.raises(SeedError):
        env.reset(seed=0)
    assert env.reset(seed=EVAL_SEEDS.start)[1]["seed"] == EVAL_SEEDS.start
    env.close()


def test_state_is_proprioception_only(reach):
    obs, info = reach.reset(seed=3)
    assert obs["state"].shape == (4,)
    np.testing.assert_allclose(obs["state"][:3], reach.mw.get_endeff_pos(), atol=1e-6)
    obs, *_ = reach.step(np.array([0.0, 0.0, 0.0, 1.0]))
    for _ in range(10):
        obs, *_ = reach.step(np.array([0.0, 0.0, 0.0, 1.0]))
    assert obs["state"][3] < 0.9                              # the gripper closed
    assert obs["rgb"].shape == (3, 3, 48, 48) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (3, 1, 48, 48) and obs["depth"].dtype == np.float32


def test_depth_lifts_onto_simulated_objects(reach):
    obs, info = reach.reset(seed=5)
    goal, radius = info["privileged"][-3:], 0.04
    depth, K, E = (torch.from_numpy(obs[k]) for k in ("depth", "intrinsics", "extrinsics"))
    for v in range(3):
        uv, z = project(torch.from_numpy(goal)[None], K[v], E[v])
        u, row = uv[0].round().long().tolist()
        assert 0 <= u < 48 and 0 <= row < 48, f"goal outside view {reach.cameras[v]}"
        point = lift(depth[v], K[v], E[v])[row, u]
        # the pixel at the goal's centre sees the front of the goal sphere
        assert abs(float((point - torch.from_numpy(goal)).norm()) - radius) < 0.01
        assert 0 < float(z) - float(depth[v, 0, row, u]) < radius + 0.01
    cam = reach.mw.model.camera("corner").id
    np.testing.assert_allclose(E[2, :3, 3].numpy(), reach.mw.data.cam_xpos[cam], atol=1e-5)
    table = lift(depth[1], K[1], E[1])[20:28, 20:28]         # top view, centre: the table top at z = 0
    assert float(table[..., 2].abs().max()) < 0.01
