"""Reading LeRobot v3 dataset folders for random access (the layout of :mod:`wamzoo.data.generate`).

    frames = LeRobotFrames("data/mw-easy", cameras=["top"], depth=True)
    frames.state[i], frames.action[i], frames.images("top")[i], frames.depth("top")[i]
    frames.start[i], frames.end[i]          # global indices bounding frame i's episode: [start, end)

Per-frame columns (``observation.state``, ``action``, ``task_index``, ``episode_index``, camera
extrinsics) are read from ``data/**/*.parquet`` into memory; frames come from memory-mapped
``arrays/<feature>.npy`` (opened lazily, so each DataLoader worker maps them itself). A standard
LeRobot dataset stores frames as ``image`` (PNG/JPEG in parquet) or ``video`` (MP4) features:
they are decoded once into ``arrays/`` on first open, after which both kinds read the same way.

Cameras are the ``observation.images.<camera>`` features; depth (``observation.depth.<camera>``),
intrinsics and extrinsics are used when the dataset has them (wamzoo-generated ones do).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from wamzoo.errors import DataError, OutputError, WamzooError

IMAGES, DEPTH, EXTRINSICS = "observation.images.", "observation.depth.", "observation.extrinsics."
#: The features whose normalisation statistics ``meta/stats.json`` holds.
STATS_FEATURES = ("action", "observation.state")


class LeRobotFrames:
    """A LeRobot v3 folder opened for random access by global frame index (see module doc).

    Args:
        root: the dataset folder (holding ``meta/info.json``).
        cameras: cameras to read (default: all image features, in ``info.json`` order).
        depth: also read metric depth (the dataset must have it).
    """

    def __init__(self, root: str | os.PathLike, cameras: Sequence[str] | None = None, depth: bool = False):
        self.root = Path(root)
        self.info = read_info(self.root)
        features = self.info["features"]
        available = [k[len(IMAGES):] for k in features if k.startswith(IMAGES)]
        self.cameras = list(cameras) if cameras else available
        missing = [c for c in self.cameras if c not in available]
        if missing:
            raise WamzooError(f"{root} has no camera(s) {missing}; it has {available}")
        if depth:
            absent = [c for c in self.cameras if DEPTH + c not in features]
            if absent:
                raise WamzooError(f"{root} has no depth for {absent}; set depth: false or regenerate the data")
        self.with_depth = depth
        ext = self.info.get("wamzoo", {})
        self.intrinsics = (np.array([ext["intrinsics"][c] for c in self.cameras], np.float32)
                           if all(c in ext.get("intrinsics", {}) for c in self.cameras) else None)
        self.tasks = read_tasks(self.root)
        cols = read_columns(self.root)
        for key in ("observation.state", "action", "episode_index"):
            if key not in cols:
                raise WamzooError(f"{root}: the data files have no {key!r} column (have {sorted(cols)})")
        order = np.argsort(cols["index"]) if "index" in cols else np.arange(len(cols["action"]))
        self.state = cols["observation.state"][order].astype(np.float32)
        self.action = cols["action"][order].astype(np.float32)
        self.episode = cols["episode_index"][order]
        self.task = cols["task_index"][order] if "task_index" in cols else np.zeros(len(order), np.int64)
        self.extrinsics = (np.stack([cols[EXTRINSICS + c][order].reshape(-1, 4, 4) for c in self.cameras], 1)
                           .astype(np.float32) if all(EXTRINSICS + c in cols for c in self.cameras) else None)
        change = np.flatnonzero(np.diff(self.episode)) + 1
        starts, ends = np.r_[0, change], np.r_[change, len(self.episode)]
        self.start = np.repeat(starts, ends - starts)
        self.end = np.repeat(ends, ends - starts)
        self.storage = {k: decode_frames(self.root, self.info, k)
                        for c in self.cameras for k in (IMAGES + c, DEPTH + c) if k in features}
        self._maps: dict[str, np.ndarray] = {}
        for key in self.storage:  # a truncated file is named here, not deep in a DataLoader worker
            self._map(key)
        self.height, self.width = self.images(self.cameras[0]).shape[-2:]

    def __len__(self) -> int:
        return len(self.action)

    def images(self, camera: str) -> np.ndarray:
        """``[N, 3, H, W]`` uint8 frames of ``camera`` (memory-mapped)."""
        return self._map(IMAGES + camera)

    def depth(self, camera: str) -> np.ndarray:
        """``[N, 1, H, W]`` depth in metres of ``camera`` (memory-mapped)."""
        return self._map(DEPTH + camera)

    def _map(self, key: str) -> np.ndarray:
        if key not in self._maps:
            path = self.storage[key]
            try:
                frames = np.load(path, mmap_mode="r")
                problem = None if len(frames) == len(self) else f"{len(frames)} rows for {len(self)} frames"
            except (ValueError, OSError, EOFError) as exc:
                problem = str(exc)
            if problem:
                remake = ("it is decoded again from the dataset's frames" if self.info["features"][key]["dtype"]
                          in ("image", "video") else "`wamzoo data metaworld` with the options that made"
                          f" {self.root} rebuilds it from the episodes kept in {self.root / 'raw'}")
                raise DataError(f"{path} is truncated or corrupt ({problem}); delete it and rerun: {remake}")
            self._maps[key] = frames
        return self._maps[key]

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _maps={})  # each worker process maps the arrays itself


def read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise WamzooError(f"{root} is not a dataset (no meta/info.json); make one with `wamzoo data metaworld"
                          f" --suite mw-easy --episodes 20 --out {root}`")
    info = json.loads(path.read_text())
    if not str(info.get("codebase_version", "")).startswith("v3"):
        raise WamzooError(f"{root} is a LeRobot {info.get('codebase_version')} dataset; convert it to v3.0 with"
                          " LeRobot's `convert_dataset_v21_to_v30` script")
    return info


def read_tasks(root: Path) -> list[str]:
    """Task strings ordered by ``task_index`` (``meta/tasks.parquet``; LeRobot keeps them as the index)."""
    import pyarrow.parquet as pq

    table = pq.read_table(root / "meta" / "tasks.parquet").to_pydict()
    name = next((k for k in ("task", "__index_level_0__") if k in table),
                next((k for k, v in table.items() if v and isinstance(v[0], str)), None))
    if name is None or "task_index" not in table:
        raise WamzooError(f"{root}/meta/tasks.parquet needs a task_index column and the task strings")
    tasks = dict(zip(table["task_index"], table[name]))
    return [tasks[i] for i in range(len(tasks))]


def read_columns(root: Path) -> dict[str, np.ndarray]:
    """Numeric per-frame columns of every data file, concatenated (fixed-size lists become 2-D)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise WamzooError(f"{root}/data holds no parquet files")
    out: dict[str, list] = {}
    for f in files:
        table = pq.read_table(f)
        for name, col in zip(table.column_names, table.columns):
            col = col.combine_chunks()
            if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
                values = col.flatten().to_numpy(zero_copy_only=False)
                out.setdefault(name, []).append(values.reshape(len(col), -1))
            elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
                out.setdefault(name, []).append(col.to_numpy(zero_copy_only=False))
    return {k: np.concatenate(v) for k, v in out.items()}


def write_stats(root: Path, columns: dict[str, np.ndarray]) -> Path:
    """Write ``root/meta/stats.json``: min, max, mean, std, q01, q99 and count of each of ``STATS_FEATURES``."""
    import torch

    from wamzoo.normalize import compute_stats

    stats = {k: dict(compute_stats(torch.from_numpy(np.asarray(columns[k], np.float32))), count=[len(columns[k])])
             for k in STATS_FEATURES}
    path = root / "meta" / "stats.json"
    path.write_text(json.dumps(stats, indent=2))
    return path


def recompute_stats(root: str | os.PathLike, force: bool = False) -> Path:
    """``wamzoo data stats DIR``: recompute the normalisation statistics of dataset ``root`` from its
    data files; an existing ``meta/stats.json`` is replaced only with ``force``."""
    root = Path(root)
    read_info(root)
    path = root / "meta" / "stats.json"
    if path.exists() and not force:
        raise OutputError(f"{path} exists; pass --force to recompute and replace it")
    return write_stats(root, read_columns(root))


def decode_frames(root: Path, info: dict, key: str) -> Path:
    """Path of the ``arrays/<key>.npy`` of a frame feature (rows follow the frames sorted by ``index``),
    decoding LeRobot images or videos into it once."""
    feature = info["features"][key]
    path = root / feature.get("storage", f"arrays/{key}.npy")
    if path.is_file():
        return path
    if feature["dtype"] not in ("image", "video"):
        raise WamzooError(f"{root}: feature {key!r} has no frames at {path}")
    if not os.access(root, os.W_OK):
        raise WamzooError(f"{root} is read-only; copy the dataset somewhere writable so its frames can be decoded"
                          " once into arrays/")
    frames = _decode_images(root, key) if feature["dtype"] == "image" else _decode_videos(root, info, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    os.replace(tmp, path)
    return path


def _decode_images(root: Path, key: str) -> np.ndarray:
    import pyarrow.parquet as pq
    from PIL import Image

    frames, order = [], []
    for f in sorted((root / "data").glob("**/*.parquet")):
        table = pq.read_table(f, columns=[key, "index"]).to_pydict()
        order.extend(table["index"])
        frames.extend(np.asarray(Image.open(io.BytesIO(cell["bytes"]) if cell.get("bytes") else root / cell["path"])
                                 .convert("RGB")) for cell in table[key])
    return np.stack(frames)[np.argsort(order)]


def _decode_videos(root: Path, info: dict, key: str) -> np.ndarray:
    """Frames of every episode, cut out of the (multi-episode) MP4 files by their timestamps."""
    import imageio.v3 as iio
    import pyarrow.parquet as pq

    episodes = {}
    for f in sorted((root / "meta" / "episodes").glob("**/*.parquet")):
        for row in pq.read_table(f).to_pylist():
            episodes[row["episode_index"]] = row
    fps, cache, frames = float(info["fps"]), {}, []
    for e in sorted(episodes):
        row = episodes[e]
        rel = info["video_path"].format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                        file_index=row[f"videos/{key}/file_index"])
        if rel not in cache:
            cache = {rel: iio.imread(root / rel)}
        first = int(round(row[f"videos/{key}/from_timestamp"] * fps))
        clip = cache[rel][first: first + row["length"]]
        if len(clip) != row["length"]:
            raise WamzooError(f"{root / rel} holds {len(clip)} frames of episode {e} from {first}, not {row['length']};"
                              " the video and meta/episodes disagree")
        frames.append(clip)
    return np.concatenate(frames)
