"""``wamzoo data metaworld --lerobot-env``: a plain LeRobot v3 dataset with the camera and state of LeRobot's
Meta-World env, read back by wamzoo's reader (LeRobot's own reader is tested in integrations/lerobot)."""

from __future__ import annotations

import io
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from wamzoo.data.dataset import MetaWorldDataModule
from wamzoo.data.generate import generate
from wamzoo.data.lerobot import LeRobotFrames
from wamzoo.errors import WamzooError
from wamzoo.images import resize_frames


def _first_frame(task: str, size: int, seed: int) -> np.ndarray:
    """The first frame ``wamzoo eval`` shows a policy trained on LeRobot's observations (in a worker: see below)."""
    from wamzoo.envs.metaworld import MetaWorldEnv

    env = MetaWorldEnv.like_lerobot(task, size, "train", 40)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    env.close()
    return obs["rgb"][0]


def test_resize_frames_is_antialiased_and_keeps_uint8():
    frames = np.zeros((2, 3, 480, 480), np.uint8)
    frames[:, :, ::2] = 255  # one-pixel stripes: antialiasing averages them to grey
    small = resize_frames(frames, 64)
    assert small.shape == (2, 3, 64, 64) and small.dtype == torch.uint8
    assert 100 < float(small.float().mean()) < 155 and int(small.max()) - int(small.min()) < 40
    same = resize_frames(frames[:, :, :64, :64], 64)
    assert torch.equal(same, torch.from_numpy(frames[:, :, :64, :64]))


def test_lerobot_env_refuses_other_cameras(tmp_path):
    with pytest.raises(WamzooError, match="corner2"):
        generate(tmp_path / "ds", ["reach-v3"], 1, workers=0, cameras=["top"], lerobot_env=True, progress=False)


@pytest.mark.slow
def test_lerobot_env_dataset(tmp_path):
    # a worker process: Meta-World's renderer is not made in this one, where other tests render with wamzoo's
    out = generate(tmp_path / "ds", ["reach-v3"], 1, workers=1, size=32, lerobot_env=True, progress=False,
                   max_steps=40, keep_failures=True)
    info = json.loads((out / "meta" / "info.json").read_text())
    feats = info["features"]
    assert feats["observation.images.corner2"]["dtype"] == "image"
    assert feats["observation.images.corner2"]["shape"] == [32, 32, 3]
    assert feats["observation.state"]["shape"] == [4] and feats["action"]["shape"] == [4]
    assert not any(k.startswith(("observation.depth.", "observation.extrinsics.")) for k in feats)
    assert info["wamzoo"]["lerobot_env"] is True and info["fps"] == 80
    table = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    assert len(table["index"]) == info["total_frames"] == 40
    from PIL import Image

    first = np.asarray(Image.open(io.BytesIO(table["observation.images.corner2"][0]["bytes"])))
    assert first.shape == (32, 32, 3) and first.std() > 5  # a rendered scene, not a blank
    frames = LeRobotFrames(out)  # wamzoo's reader: decodes the PNGs once into arrays/
    assert frames.cameras == ["corner2"] and frames.tasks == ["reach-v3"]
    assert np.array_equal(frames.images("corner2")[0], first.transpose(2, 0, 1))
    assert np.allclose(frames.state[0][:3], [0.0, 0.6, 0.2], atol=0.05)  # the hand's start, metres
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert episodes["length"] == [40] and episodes["meta/episodes/chunk_index"] == [0]
    # a policy trained on it records that it reads LeRobot's observations; the evaluator renders them alike
    assert MetaWorldDataModule(str(out), horizon=4).describe().lerobot_env
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        again = pool.submit(_first_frame, "reach-v3", 32, episodes["seed"][0]).result()
    assert np.array_equal(again, first.transpose(2, 0, 1))
