"""Closed-loop evaluation: success from the environment's flag, reports, seeds, videos, workers."""

import json

import numpy as np
import pytest

from wamzoo.envs.metaworld import SeedError
from wamzoo.errors import WamzooError
from wamzoo.evaluate import evaluate

pytestmark = pytest.mark.render


def test_success_is_the_environments_own_flag(monkeypatch):
    from metaworld.envs.sawyer_reach_v3 import SawyerReachEnvV3

    original = SawyerReachEnvV3.evaluate_state
    seen = []

    def flag_at_step_3(self, obs, action):
        reward, info = original(self, obs, action)
        seen.append(info["success"])
        return reward, dict(info, success=float(self.curr_path_length >= 3))

    monkeypatch.setattr(SawyerReachEnvV3, "evaluate_state", flag_at_step_3)
    rep = evaluate("scripted", tasks=["reach-v3"], episodes=2, workers=0, progress=False)
    assert rep["tasks"]["reach-v3"]["success_rate"] == 1.0 and not any(seen)    # the real task was not done yet
    assert [e["steps"] for e in rep["episodes"]] == [3, 3]
    def never(self, obs, action):
        reward, info = original(self, obs, action)
        return reward, dict(info, success=0.0)

    monkeypatch.setattr(SawyerReachEnvV3, "evaluate_state", never)
    rep = evaluate("scripted", tasks=["reach-v3"], episodes=1, max_steps=60, workers=0, progress=False)
    assert rep["tasks"]["reach-v3"]["success_rate"] == 0.0 and rep["episodes"][0]["steps"] == 60
    assert rep["tasks"]["reach-v3"]["mean_steps_to_success"] is None


def test_scripted_experts_solve_their_tasks_from_the_command_line(tmp_path, capsys):
    from wamzoo.cli import main

    out = tmp_path / "r.json"
    assert main(["eval", "--policy", "scripted", "--tasks", "reach-v3,drawer-close-v3", "--episodes", "2",
                 "--workers", "0", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["mean_success_rate"] == 1.0 and rep["seeds"] == [1_000_000, 1_000_001]
    assert set(rep["tasks"]) == {"reach-v3", "drawer-close-v3"} and rep["tasks"]["reach-v3"]["episodes"] == 2
    assert rep["command"].startswith("wamzoo") and rep["env_steps_per_s"] > 0
    assert "drawer-close-v3" in capsys.readouterr().out
    reach = [e for e in rep["episodes"] if e["task"] == "reach-v3"]
    assert all(0 <= e["closest"] <= 0.05 for e in reach)  # how near each episode came: within reach's 5 cm
    with pytest.raises(SeedError, match="eval seeds must lie in"):
        evaluate("scripted", tasks=["reach-v3"], episodes=1, seed=0, workers=0, progress=False)


@pytest.fixture(scope="module")
def tiny_policy(mw_dataset):
    """An untrained tiny policy for the fixture dataset that also predicts video (2 views, 32 px)."""
    from wamzoo.data.dataset import MetaWorldDataModule
    from wamzoo.policy import WAMPolicy
    from wamzoo.recipes import compose

    recipe = compose("mw-tiny", ["policy.scheduler.phases=[{video: 2, action: 2}]"])
    info = MetaWorldDataModule(str(mw_dataset), horizon=8, n_obs=2, n_future=1, frame_stride=4).info()
    return WAMPolicy.from_config(recipe.policy, info).eval()


def test_an_in_memory_policy_runs_inline_with_videos(tiny_policy, tmp_path):
    import imageio.v3 as iio

    rep = evaluate(tiny_policy, tasks=["reach-v3"], episodes=1, max_steps=12, replan=5, video_dir=str(tmp_path),
                   progress=False)
    task = rep["tasks"]["reach-v3"]
    assert 0.0 <= task["success_rate"] <= 1.0 and task["policy_latency_ms"] > 0 and task["control_hz"] > 0
    assert rep["replan"] == 5 and rep["episodes"][0]["chunks"] == 3 and rep["workers"] == 2
    json.dumps(rep)
    video = rep["episodes"][0]["video"]
    frames = iio.imread(video)
    assert len(frames) == 12 and frames.shape[1:3] == (2 * 32 * 4, 2 * 32 * 4)   # reality above prediction


def test_evaluation_refuses_the_policys_training_seeds(tiny_policy):
    assert tiny_policy.info.seed_range == [0, 1]
    tiny_policy.info.seed_range = [0, 1_000_005]
    try:
        with pytest.raises(SeedError, match="overlap the policy's training seeds"):
            evaluate(tiny_policy, tasks=["reach-v3"], episodes=2, workers=0, progress=False)
    finally:
        tiny_policy.info.seed_range = [0, 1]
    with pytest.raises(Exception, match="not trained on"):
        evaluate(tiny_policy, tasks=["door-open-v3"], episodes=1, workers=0, progress=False)


@pytest.mark.slow
def test_worker_processes_load_the_policy_themselves(tiny_policy, tmp_path):
    folder = tiny_policy.save_pretrained(tmp_path / "policy")
    inline = evaluate(tiny_policy, tasks=["reach-v3"], episodes=2, max_steps=10, workers=0, progress=False)
    parallel = evaluate(str(folder), tasks=["reach-v3"], episodes=2, max_steps=10, workers=2, progress=False)
    assert parallel["workers"] == 2 and parallel["policy"] == str(folder)
    strip = lambda rep: [(e["seed"], e["success"], e["steps"], e["chunks"]) for e in rep["episodes"]]  # noqa: E731
    assert strip(parallel) == strip(inline)                      # same layouts, same seeded sampling
    assert np.isfinite(parallel["episodes_per_min"])


def test_episodes_stepped_together_act_as_they_would_alone(tiny_policy, monkeypatch):
    """One batched policy call per chunk for a group of episodes: each episode's executed actions equal
    those of the same episode evaluated alone (its noise comes from its own seed)."""
    from wamzoo.envs.metaworld import MetaWorldEnv

    log: dict = {}
    reset, step = MetaWorldEnv.reset, MetaWorldEnv.step

    def logged_reset(self, seed=None, **kw):
        self.logged_seed = seed
        log[(self.batch_label, seed)] = []
        return reset(self, seed=seed, **kw)

    def logged_step(self, action, **kw):
        log[(self.batch_label, self.logged_seed)].append(np.array(action))
        return step(self, action, **kw)

    monkeypatch.setattr(MetaWorldEnv, "reset", logged_reset)
    monkeypatch.setattr(MetaWorldEnv, "step", logged_step)
    reps = {}
    for batch in (1, 3):
        monkeypatch.setattr(MetaWorldEnv, "batch_label", batch, raising=False)
        reps[batch] = evaluate(tiny_policy, tasks=["reach-v3"], episodes=3, max_steps=15, replan=4, workers=0,
                               progress=False, batch=batch)
    assert reps[3]["batch"] == 3 and [e["chunks"] for e in reps[3]["episodes"]] == [4, 4, 4]
    for seed in reps[1]["seeds"]:
        alone, together = np.stack(log[(1, seed)]), np.stack(log[(3, seed)])
        assert alone.shape == together.shape == (15, 4)
        np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(np.stack(log[(3, 1_000_000)]), np.stack(log[(3, 1_000_001)]))  # layouts and noise differ
    with pytest.raises(Exception, match="--batch"):
        evaluate(tiny_policy, tasks=["reach-v3"], episodes=1, workers=0, progress=False, batch=0)


@pytest.mark.parametrize("replan,lag", [(1, 0), (3, 0), (5, 2), (8, 0), (8, 7)])
def test_every_frame_a_call_looks_at_is_rendered(tiny_policy, replan, lag):
    """The evaluator renders only the frames ``needs_frame`` names; every call's frames must be among them."""
    from wamzoo.evaluate import PolicyAgent

    agent = PolicyAgent(tiny_policy, replan=replan, frame_lag=lag)
    agent.reset("reach-v3", seeds=[1_000_000])
    frame = {"rgb": np.zeros((2, 3, 32, 32), np.uint8), "depth": np.zeros((2, 1, 32, 32), np.float32),
             "state": np.zeros(4, np.float32), "intrinsics": np.eye(3)[None].repeat(2, 0),
             "extrinsics": np.eye(4)[None].repeat(2, 0)}
    agent.observe(0, frame, {})
    rendered = 1
    for step in range(1, 60):  # the frame after env step `step`; a call every `replan` steps
        needed = agent.needs_frame(step)
        rendered += needed
        agent.observe(0, frame if needed else {"state": frame["state"]}, {})
        if step % agent.replan == 0:
            agent.sample(agent.histories[0])  # raises if a frame it looks at was skipped
    assert rendered < 60 or agent.replan == 1


def test_eval_runs_a_saved_policy_in_bfloat16(tiny_policy, tmp_path, capsys):
    from wamzoo.cli import main

    folder = tiny_policy.save_pretrained(tmp_path / "policy")
    out = tmp_path / "r.json"
    assert main(["eval", str(folder), "--tasks", "reach-v3", "--episodes", "2", "--max-steps", "8", "--workers", "0",
                 "--dtype", "bfloat16", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert (rep["device"], rep["dtype"]) == ("cpu", "bfloat16") and len(rep["episodes"]) == 2
    assert "cpu bfloat16" in capsys.readouterr().out


def test_temporal_ensembling_averages_every_chunks_prediction_for_the_step(tiny_policy):
    from wamzoo.evaluate import PolicyAgent

    agent = PolicyAgent(tiny_policy, replan=8, ensemble=0.5)
    assert agent.replan == 1  # a call every step
    agent.reset(tiny_policy.tasks[0], [1_000_000])
    first, second = np.arange(8.0).reshape(4, 2)[None], 10 + np.arange(8.0).reshape(4, 2)[None]
    assert np.array_equal(agent.ensembled(first), first[:, :1])  # one prediction: itself
    w = np.exp(-0.5 * np.arange(2))
    expected = (w[0] * first[0, 1] + w[1] * second[0, 0]) / w.sum()  # the older chunk weighs more
    assert np.allclose(agent.ensembled(second)[0, 0], expected)
    assert [len(c) for c in agent.pending[0]] == [2, 3]
    with pytest.raises(WamzooError, match="exp"):
        PolicyAgent(tiny_policy, replan=8, ensemble=-1.0)


def test_an_ensembled_evaluation_runs(tiny_policy):
    rep = evaluate(tiny_policy, tasks="reach-v3", episodes=1, max_steps=12, workers=0, ensemble=0.1, progress=False)
    assert rep["ensemble"] == 0.1 and rep["replan"] == 1
    assert rep["tasks"]["reach-v3"]["episodes"] == 1


def test_an_interrupted_evaluation_resumes_from_its_journal(tiny_policy, tmp_path, monkeypatch):
    """Episodes finished before an interruption are reused, not rerun, and the report equals an uninterrupted
    one; a journal of other settings is refused and kept; ``wamzoo eval --json`` removes its journal once the
    report is written."""
    import copy

    import torch

    from wamzoo.cli import main
    from wamzoo.errors import OutputError
    from wamzoo.evaluate import Runner
    from wamzoo.journal import fingerprint

    args = dict(tasks=["reach-v3"], max_steps=8, replan=4, workers=0, batch=1, progress=False)
    journal = tmp_path / "r.json.partial"
    evaluate(tiny_policy, episodes=1, journal=journal, **args)         # stopped after its first episode
    with journal.open("a") as f:
        f.write('{"run": 0, "elapsed_s": 1.0, "episo')                # a line cut short by the kill
    ran, run = [], Runner.episodes
    monkeypatch.setattr(Runner, "episodes", lambda self, task, seeds: ran.extend(seeds) or run(self, task, seeds))
    resumed = evaluate(tiny_policy, episodes=3, journal=journal, **args)
    assert ran == [1_000_001, 1_000_002]                                # the first episode was not run again
    fresh = evaluate(tiny_policy, episodes=3, **args)
    strip = lambda rep: [(e["seed"], e["success"], e["steps"], e["chunks"]) for e in rep["episodes"]]  # noqa: E731
    assert strip(resumed) == strip(fresh) and resumed["wall_s"] > 0

    before = journal.read_text()
    with pytest.raises(OutputError, match="another evaluation.*remove"):
        evaluate(tiny_policy, episodes=3, journal=journal, **{**args, "replan": 2})
    assert journal.read_text() == before

    other = copy.deepcopy(tiny_policy)
    assert fingerprint(other) == fingerprint(tiny_policy)
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-3                    # one weight changed
    assert fingerprint(other) != fingerprint(tiny_policy)

    out = tmp_path / "cli.json"
    folder = tiny_policy.save_pretrained(tmp_path / "policy")
    assert main(["eval", str(folder), "--tasks", "reach-v3", "--episodes", "1", "--max-steps", "8", "--workers", "0",
                 "--json", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "cli.json.partial").exists()
