"""Does a policy read the goal from the images? Its first action on the training layouts against the expert's.

Every layout of a task starts the hand at the same place, so the only thing that tells one layout's first action
from another's is what the cameras see (reach: the goal). For each of the first ``--layouts`` demonstrations of
``--task`` in the dataset, the policy predicts a chunk from the demonstration's first observation; the table
compares the spread of the predicted first actions across layouts with the spread of the expert's (a policy
that ignores the goal predicts the same action everywhere: spread near 0) and gives the mean error.

    python benchmarks/goal_reading.py runs/fast-wam-budget --task reach-v3 --layouts 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from wamzoo.batch import Batch
from wamzoo.loading import load_policy

AXES = ("x", "y", "z")


def first_actions(policy, root: Path, task: str, layouts: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and recorded first actions ``[layouts, 3]`` (xyz) on the dataset's first ``layouts`` episodes."""
    files = sorted((root / "raw" / task).glob("*.ok.npz"))[:layouts]
    if not files:
        raise SystemExit(f"{root / 'raw' / task} holds no episodes: generate the dataset (wamzoo data metaworld)")
    predicted, recorded, n = [], [], policy.info.n_obs
    for f in files:
        ep = np.load(f)
        frames = np.repeat(ep["rgb"][:1], n, axis=0)[None]  # an episode's start: earlier frames are padding
        obs = Batch(rgb=torch.from_numpy(frames), state=torch.from_numpy(ep["state"][0][None]).float(),
                    task_id=torch.tensor([policy.task_id(task)]), n_obs=n,
                    frame_pad=torch.tensor([[True] * (n - 1) + [False]]),
                    intrinsics=torch.from_numpy(ep["intrinsics"][None]).float(),
                    extrinsics=torch.from_numpy(ep["extrinsics"][0][None]).float())
        predicted.append(policy.predict(obs)["action"][0, 0, :3].numpy())
        recorded.append(ep["action"][0, :3])
    return np.stack(predicted), np.stack(recorded)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy", help="run folder, checkpoint or pretrained name")
    p.add_argument("--task", default="reach-v3")
    p.add_argument("--layouts", type=int, default=20)
    p.add_argument("--data", default="data/metaworld/mw-easy-64-50ep")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pred, rec = first_actions(load_policy(args.policy).eval(), Path(args.data), args.task, args.layouts)
    print(f"{args.policy} on {args.task}, first action of {len(pred)} training layouts")
    print("| axis | expert spread (std) | policy spread (std) | mean abs error |")
    print("|---|---:|---:|---:|")
    for i, a in enumerate(AXES):
        print(f"| {a} | {rec[:, i].std():.3f} | {pred[:, i].std():.3f} | {np.abs(pred[:, i] - rec[:, i]).mean():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
