"""Demonstration datasets: windows line up with the simulator, normalisation, LeRobot folders, resuming."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from wamzoo.data.dataset import MetaWorldDataModule, Windows
from wamzoo.data.lerobot import LeRobotFrames
from wamzoo.errors import WamzooError
from wamzoo.normalize import MODES, Normalizer

MW_TASKS = ["reach-v3", "drawer-close-v3"]   # the tasks of the mw_dataset fixture


def _raw(root, task, seed=0):
    return dict(np.load(root / "raw" / task / f"{seed:07d}.ok.npz"))


@pytest.mark.render
def test_windows_line_up_frames_actions_and_pads(mw_dataset):
    frames = LeRobotFrames(mw_dataset, depth=True)
    assert frames.cameras == ["oblique", "top"] and frames.tasks == MW_TASKS
    ds = Windows(frames, horizon=5, n_obs=2, n_future=2, frame_stride=3)
    raw = _raw(mw_dataset, "drawer-close-v3")          # the second episode, straight from the generator
    n, start = len(raw["action"]), int(np.flatnonzero(frames.task == 1)[0])
    for k in (0, 1, 10, n - 4, n - 1):                   # history padding, middle, future/action padding
        item = ds[start + k]
        want = np.array([k - 3, k, k + 3, k + 6])
        pad = (want < 0) | (want > n - 1)
        np.testing.assert_array_equal(item["frame_pad"].numpy(), pad)
        for j, f in enumerate(np.clip(want, 0, n - 1)):
            np.testing.assert_array_equal(item["rgb"][j].numpy(), raw["rgb"][f])
            np.testing.assert_array_equal(item["depth"][j].numpy(), raw["depth"][f].astype(np.float32))
        acts = np.arange(k, k + 5)
        np.testing.assert_array_equal(item["action_pad"].numpy(), acts > n - 1)
        np.testing.assert_array_equal(item["action"].numpy(), raw["action"][np.minimum(acts, n - 1)])
        np.testing.assert_array_equal(item["state"].numpy(), raw["state"][k])
        np.testing.assert_array_equal(item["extrinsics"].numpy(), raw["extrinsics"][k])
        assert item["task_id"] == 1 and item["n_obs"] == 2


@pytest.mark.render
def test_frame_t_is_what_the_robot_saw_before_action_t(mw_dataset):
    """Replaying the recorded actions from the recorded seed reproduces every recorded frame."""
    from wamzoo.envs.metaworld import MetaWorldEnv

    frames = LeRobotFrames(mw_dataset)
    env = MetaWorldEnv("reach-v3", frames.cameras, 32, 32)
    obs, _ = env.reset(seed=0)
    episode = np.flatnonzero(frames.episode == 0)
    for t in episode:
        for v, cam in enumerate(frames.cameras):
            np.testing.assert_array_equal(obs["rgb"][v], frames.images(cam)[t])
        np.testing.assert_array_equal(obs["state"], frames.state[t])
        obs, _, _, _, info = env.step(frames.action[t])
    assert info["success"]                               # the episode ends at the expert's success
    env.close()


@pytest.mark.render
def test_normalisation_round_trips_with_saved_stats(mw_dataset):
    info = MetaWorldDataModule(str(mw_dataset), horizon=4).info()
    actions = np.concatenate([_raw(mw_dataset, t)["action"] for t in MW_TASKS])
    np.testing.assert_allclose(info.stats["action"]["min"], actions.min(0), atol=1e-6)
    np.testing.assert_allclose(info.stats["action"]["max"], actions.max(0), atol=1e-6)
    x = torch.from_numpy(actions)
    for mode in MODES:
        norm = Normalizer(info.stats, {"action": mode, "state": mode})
        y = norm.normalize("action", x)
        assert torch.allclose(norm.unnormalize("action", y), x, atol=1e-5)
        if mode == "min_max":
            assert float(y.abs().max()) <= 1 + 1e-5
    assert info.seed_range == [0, 1] and info.cameras == ["oblique", "top"] and info.tasks == MW_TASKS


@pytest.mark.render
def test_datamodule_batches_with_worker_processes(mw_dataset):
    dm = MetaWorldDataModule(str(mw_dataset), suite=None, tasks=["drawer-close-v3"], horizon=4, n_obs=1,
                             n_future=1, frame_stride=2, depth=True, batch_size=4, num_workers=2)
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.windows()) // 4
    b = batches[0].validate(need_action=True)
    assert b.rgb.shape == (4, 2, 2, 3, 32, 32) and b.depth.shape == (4, 2, 2, 1, 32, 32)
    assert b.task_id.tolist() == [0] * 4 and dm.describe().tasks == ["drawer-close-v3"]
    with pytest.raises(WamzooError, match="no demonstrations of"):
        MetaWorldDataModule(str(mw_dataset), suite="mw-easy").describe()


def test_missing_dataset_is_described_from_arguments_or_explained(tmp_path):
    dm = MetaWorldDataModule(str(tmp_path / "none"), suite="mw-easy", size=32, horizon=8)
    info = dm.describe()
    assert (info.height, info.num_views, len(info.tasks), info.action_dim) == (32, 2, 5, 4)
    assert not (tmp_path / "none").exists()
    with pytest.raises(WamzooError, match="wamzoo data metaworld"):
        MetaWorldDataModule(str(tmp_path / "none"), suite="mw-easy").info()


@pytest.mark.render
def test_generation_resumes_and_keeps_finished_episodes(tmp_path):
    from wamzoo.data.generate import generate

    out = tmp_path / "ds"
    small = dict(workers=0, size=16, cameras=["top"], progress=False)
    generate(out, ["reach-v3"], episodes=1, **small)
    first = out / "raw" / "reach-v3" / "0000000.ok.npz"
    stamp = first.stat().st_mtime_ns
    (out / "raw" / "reach-v3" / ".0000001.99.tmp.npz").write_bytes(b"a partial episode")   # a killed write
    (out / "meta" / "info.json").unlink()
    generate(out, ["reach-v3"], episodes=2, **small)
    assert first.stat().st_mtime_ns == stamp                              # kept, not recomputed
    assert sorted(p.name for p in (out / "raw" / "reach-v3").iterdir()) == ["0000000.ok.npz", "0000001.ok.npz"]
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["wamzoo"]["seed_range"] == [0, 2]
    with pytest.raises(WamzooError, match="--cameras/--size"):
        generate(out, ["reach-v3"], episodes=2, **dict(small, size=24))


@pytest.mark.render
def test_dart_noise_moves_the_robot_and_records_the_experts_own_actions(tmp_path):
    from wamzoo.data.generate import _env, generate, record_episode
    from wamzoo.envs.metaworld import expert

    env = _env("reach-v3", ("top",), 16, 500)
    clean, noisy = record_episode(env, 3), record_episode(env, 3, noise=0.5)
    assert not np.allclose(clean["state"][:10], noisy["state"][:10])   # the perturbed actions moved the hand
    act = expert("reach-v3")                                            # replay: every recorded action is the
    obs, info = env.reset(seed=3)                                       # expert's at the state it was taken in
    rng = np.random.default_rng(3)
    for t, recorded in enumerate(noisy["action"]):
        np.testing.assert_allclose(recorded, act(info["privileged"]), atol=1e-6)
        np.testing.assert_allclose(obs["state"], noisy["state"][t], atol=1e-6)
        step = np.clip(recorded + rng.normal(0.0, 0.5, recorded.shape), -1.0, 1.0).astype(recorded.dtype)
        obs, _, _, _, info = env.step(step)
    out = generate(tmp_path / "ds", ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], noise=0.5,
                   progress=False)
    with pytest.raises(WamzooError, match="data.noise=0.0"):              # a recipe without noise refuses it
        MetaWorldDataModule(str(out), tasks=["reach-v3"], episodes=1).prepare_data()
    with pytest.raises(WamzooError, match="--noise"):
        generate(out, ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], progress=False)


def _distances(env, seed, actions):
    """Meta-World's fingertips-to-goal distance after each of ``actions`` replayed on ``seed``'s layout."""
    env.reset(seed=seed)
    return [float(env.step(a)[4]["obj_to_target"]) for a in actions]


@pytest.mark.render
def test_settled_episodes_go_on_past_the_first_success(tmp_path):
    from wamzoo.data.generate import _env, generate, record_episode

    env = _env("reach-v3", ("top",), 16, 500)
    short, settled = record_episode(env, 3), record_episode(env, 3, settle=12)
    first = len(short["action"])                              # the plain episode ends at its first success
    assert short["success"][-1] and not short["success"][:-1].any()
    assert len(settled["action"]) == first + 12                # the same episode, 12 steps longer
    np.testing.assert_array_equal(settled["action"][:first], short["action"])
    assert settled["success"][first - 1:].all()
    out = generate(tmp_path / "ds", ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], settle=12,
                   progress=False)
    assert LeRobotFrames(out).episode.tolist() == [0] * len(record_episode(env, 0, settle=12)["action"])
    with pytest.raises(WamzooError, match="data.settle=0"):               # a recipe without settle refuses it
        MetaWorldDataModule(str(out), tasks=["reach-v3"], episodes=1).prepare_data()
    with pytest.raises(WamzooError, match="--settle"):
        generate(out, ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], progress=False)
    with pytest.raises(WamzooError, match="--settle counts steps"):
        generate(tmp_path / "bad", ["reach-v3"], episodes=1, workers=0, settle=-1, progress=False)
    with pytest.raises(WamzooError, match="--aim must be one of wrist, fingertips"):
        generate(tmp_path / "bad", ["reach-v3"], episodes=1, workers=0, aim="hand", progress=False)
    assert not (tmp_path / "bad").exists()


@pytest.mark.render
def test_reach_expert_aimed_at_the_fingertips_brings_them_onto_the_goal(tmp_path):
    """Meta-World's reach expert settles with the fingertips 4-5 cm from the goal, just inside the 5 cm success
    radius; aimed with the fingertips it brings them within 2 cm. Other experts are unchanged."""
    from wamzoo.data.generate import _env, generate, record_episode

    env = _env("reach-v3", ("top",), 16, 500)
    for seed in (3, 4):
        wrist, tips = (record_episode(env, seed, settle=30, aim=aim) for aim in ("wrist", "fingertips"))
        assert 0.04 < _distances(env, seed, wrist["action"])[-1] < 0.05
        assert _distances(env, seed, tips["action"])[-1] < 0.02
    drawer = _env("drawer-close-v3", ("top",), 16, 500)
    np.testing.assert_array_equal(record_episode(drawer, 3)["action"],
                                  record_episode(drawer, 3, aim="fingertips")["action"])
    out = generate(tmp_path / "ds", ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"],
                   aim="fingertips", progress=False)
    assert json.loads((out / "raw" / "settings.json").read_text())["aim"] == "fingertips"
    with pytest.raises(WamzooError, match="data.aim=wrist"):
        MetaWorldDataModule(str(out), tasks=["reach-v3"], episodes=1).prepare_data()
    MetaWorldDataModule(str(out), tasks=["reach-v3"], episodes=1, aim="fingertips").prepare_data()


@pytest.mark.render
def test_only_successful_demonstrations_are_kept_unless_asked(tmp_path):
    from wamzoo.data.generate import generate

    small = dict(workers=0, size=16, cameras=["top"], max_steps=5, progress=False)
    with pytest.raises(WamzooError, match="succeeded too rarely"):      # 5 steps: the expert never succeeds
        generate(tmp_path / "a", ["reach-v3"], episodes=1, **small)
    out = generate(tmp_path / "b", ["reach-v3"], episodes=2, keep_failures=True, **small)
    frames = LeRobotFrames(out)
    assert len(frames) == 10 and frames.episode.tolist() == [0] * 5 + [1] * 5


@pytest.mark.slow
@pytest.mark.render
def test_killed_generation_keeps_finished_episodes(tmp_path):
    from wamzoo.data.generate import generate

    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "wamzoo.cli", "data", "metaworld", "--tasks", "reach-v3", "--episodes", "3",
           "--out", str(out), "--workers", "0", "--size", "32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((out / "raw" / "reach-v3").glob("*.ok.npz")) and time.time() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "raw" / "reach-v3").glob("*.ok.npz")}
    assert kept and not (out / "meta" / "info.json").exists()
    for name in kept:
        np.load(out / "raw" / "reach-v3" / name)["action"]              # complete, readable
    generate(out, ["reach-v3"], episodes=3, workers=0, size=32, progress=False)
    assert all((out / "raw" / "reach-v3" / n).stat().st_mtime_ns == m for n, m in kept.items())
    assert json.loads((out / "meta" / "info.json").read_text())["total_episodes"] == 3


# -- a hand-made LeRobot v3 dataset ------------------------------------------------------------
def _lerobot(root, kind):
    """2 episodes x 5 frames; frame i of the dataset is a flat image of grey level 20 i."""
    import io

    import imageio.v3 as iio
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    H = W = 16
    N, fps, key = 10, 10, "observation.images.cam"
    images = [np.full((H, W, 3), 20 * i, np.uint8) for i in range(N)]
    cols = {"index": np.arange(N), "episode_index": np.repeat([0, 1], 5), "frame_index": np.tile(np.arange(5), 2),
            "timestamp": np.tile(np.arange(5), 2) / fps, "task_index": np.repeat([1, 0], 5)}
    table = {k: pa.array(v) for k, v in cols.items()}
    table["observation.state"] = pa.array(np.arange(N * 3, dtype=np.float32).reshape(N, 3).tolist(),
                                          pa.list_(pa.float32()))
    table["action"] = pa.array((np.arange(N * 2, dtype=np.float32).reshape(N, 2) / 10).tolist(), pa.list_(pa.float32()))
    if kind == "image":
        pngs = []
        for im in images:
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format="PNG")
            pngs.append({"bytes": buf.getvalue(), "path": None})
        table[key] = pa.array(pngs)
    (root / "data" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(table), root / "data" / "chunk-000" / "file-000.parquet")
    pq.write_table(pa.table({"task_index": [0, 1], "__index_level_0__": ["open the door", "push the block"]}),
                   root / "meta" / "tasks.parquet")
    episodes = {"episode_index": [0, 1], "length": [5, 5], "dataset_from_index": [0, 5], "dataset_to_index": [5, 10]}
    if kind == "video":
        video = root / "videos" / key / "chunk-000" / "file-000.mp4"
        video.parent.mkdir(parents=True)
        iio.imwrite(video, np.stack(images), fps=fps, codec="libx264", macro_block_size=1)
        episodes.update({f"videos/{key}/chunk_index": [0, 0], f"videos/{key}/file_index": [0, 0],
                         f"videos/{key}/from_timestamp": [0.0, 0.5], f"videos/{key}/to_timestamp": [0.5, 1.0]})
    pq.write_table(pa.table(episodes), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    feats = {"observation.state": {"dtype": "float32", "shape": [3]}, "action": {"dtype": "float32", "shape": [2]},
             key: {"dtype": kind, "shape": [H, W, 3], "names": ["height", "width", "channel"]}}
    (root / "meta" / "info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "fps": fps, "features": feats,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"}))
    (root / "meta" / "stats.json").write_text(json.dumps({"action": {"mean": [0.0, 0.0], "std": [1.0, 1.0]}}))


@pytest.mark.parametrize("kind", ["image", "video"])
def test_a_lerobot_dataset_reads_through_the_same_interface(tmp_path, kind):
    _lerobot(tmp_path, kind)
    dm = MetaWorldDataModule(str(tmp_path), horizon=3, n_obs=1, n_future=1, frame_stride=2, batch_size=2,
                             num_workers=0)
    info = dm.info()
    assert info.tasks == ["open the door", "push the block"] and info.cameras == ["cam"]
    assert (info.action_dim, info.state_dim, info.height, info.width) == (2, 3, 16, 16)
    assert info.stats["action"]["max"] == pytest.approx([1.8, 1.9])    # incomplete saved stats: recomputed
    item = dm.windows()[3]                                             # episode 0, frame 3: future frame 5 pads
    grey = item["rgb"].float().mean(dim=(1, 2, 3, 4)).numpy()
    np.testing.assert_allclose(grey, [60, 80], atol=0 if kind == "image" else 4)
    assert item["frame_pad"].tolist() == [False, True] and item["task_id"] == 1
    np.testing.assert_allclose(item["action"].numpy(), [[0.6, 0.7], [0.8, 0.9], [0.8, 0.9]], atol=1e-6)
    assert item["action_pad"].tolist() == [False, False, True]
    assert "depth" not in item and "intrinsics" not in item
    batch = next(iter(dm.train_dataloader())).validate(need_action=True)
    assert batch.rgb.shape == (2, 2, 1, 3, 16, 16)


def test_random_shift_moves_every_frame_of_a_view_together(mw_dataset):
    """With ``shift``, a window's frames (history and future), depth and step frames move by one offset per
    view, and its intrinsics follow (the principal point moves with the image)."""
    import torch

    from wamzoo.data.augment import shift_offsets, shift_views
    from wamzoo.data.dataset import Windows
    from wamzoo.data.lerobot import LeRobotFrames

    frames = LeRobotFrames(mw_dataset, depth=True)
    args = dict(horizon=4, n_obs=2, n_future=2, frame_stride=2, step_obs=True)
    plain, shifted = Windows(frames, **args), Windows(frames, shift=3, **args)
    torch.manual_seed(7)
    item = shifted[5]
    torch.manual_seed(7)
    offsets = shift_offsets(2, 3)
    want = plain[5]
    assert offsets.any() and abs(offsets).max() <= 3
    for key in ("rgb", "depth", "step_rgb"):
        np.testing.assert_array_equal(item[key].numpy(), shift_views(want[key].numpy(), offsets))
    np.testing.assert_allclose(item["intrinsics"][:, :2, 2] - want["intrinsics"][:, :2, 2], offsets[:, ::-1])
    torch.testing.assert_close(item["action"], want["action"])
    with pytest.raises(Exception, match="shift >= 0"):
        Windows(frames, shift=-1, **args)


def test_repeated_action_tail_is_trained_on(mw_dataset):
    """With ``action_tail="repeat"`` a chunk that runs past the episode's end holds its last action,
    and no step of it is masked out of the loss (Diffusion Policy's sampler); ``"mask"`` flags them."""
    frames = LeRobotFrames(mw_dataset)
    masked, repeated = (Windows(frames, horizon=6, action_tail=tail) for tail in ("mask", "repeat"))
    last = int(frames.end[0]) - 1                      # the first episode's last step
    a, b = masked[last - 2], repeated[last - 2]
    np.testing.assert_array_equal(a["action_pad"].numpy(), [False] * 3 + [True] * 3)
    assert not b["action_pad"].any()
    torch.testing.assert_close(a["action"], b["action"])
    np.testing.assert_array_equal(b["action"][3:].numpy(), np.repeat(frames.action[last][None], 3, 0))
    with pytest.raises(WamzooError, match="action_tail must be one of mask, repeat"):
        Windows(frames, horizon=6, action_tail="hold")


def test_task_balance_draws_every_task_equally_often(mw_dataset):
    """``balance="tasks"`` draws reach's short episode as often as drawer-close's long one; ``"frames"``
    draws in proportion to each task's frames; an unknown mode is refused, naming the valid ones."""
    def task_share(balance):
        dm = MetaWorldDataModule(str(mw_dataset), horizon=4, balance=balance, batch_size=8, num_workers=0)
        ids = torch.cat([torch.as_tensor(b.task_id) for _ in range(40) for b in dm.train_dataloader()])
        return (ids == 0).float().mean().item(), dm.windows()

    by_task, windows = task_share("tasks")
    by_frame, _ = task_share("frames")
    reach = (windows.task_id[windows.samples] == 0).mean()
    assert reach < 0.45                                     # the fixture's reach episode is the shorter one
    assert abs(by_task - 0.5) < 0.03 and abs(by_frame - reach) < 0.03
    with pytest.raises(WamzooError, match="data.balance must be one of frames, tasks"):
        MetaWorldDataModule(str(mw_dataset), balance="episodes")


@pytest.mark.render
@pytest.mark.filterwarnings("ignore:Constant")
def test_recorded_actions_are_the_executed_ones_and_older_datasets_are_refused_untouched(tmp_path):
    """The experts' raw outputs reach +-12 and ``step`` clips to [-1, 1]: the dataset records the clipped
    action, which executes the same; a dataset recorded before that is refused, naming the fix, and kept."""
    import json

    from metaworld.policies import ENV_POLICY_MAP

    from wamzoo.data.generate import _env, generate, record_episode
    from wamzoo.envs.metaworld import expert

    env = _env("reach-v3", ("top",), 16, 500)
    _, info = env.reset(seed=1)
    raw = np.asarray(ENV_POLICY_MAP["reach-v3"]().get_action(info["privileged"]))
    assert np.abs(raw).max() > 1                                    # the expert's own output leaves the space
    np.testing.assert_array_equal(expert("reach-v3")(info["privileged"]), np.clip(raw, -1, 1).astype(np.float32))
    episode = record_episode(env, 1)
    assert np.abs(episode["action"]).max() <= 1 and np.abs(episode["action"][0, :3]).max() == 1
    assert episode["success"][-1]                                   # the clipped expert still succeeds
    out = generate(tmp_path / "ds", ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], progress=False)
    cfg = out / "raw" / "settings.json"
    old = {k: v for k, v in json.loads(cfg.read_text()).items() if k != "actions"}
    cfg.write_text(json.dumps(old))                                 # as an older wamzoo wrote it
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(WamzooError, match="unclipped expert actions.*another folder"):
        MetaWorldDataModule(str(out), tasks=["reach-v3"], episodes=1).prepare_data()
    with pytest.raises(WamzooError, match="unclipped expert actions"):
        generate(out, ["reach-v3"], episodes=1, workers=0, size=16, cameras=["top"], progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before and json.loads(cfg.read_text()) == old
