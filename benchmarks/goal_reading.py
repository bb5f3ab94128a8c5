"""Does a policy read the goal from the images? Its first action on the training layouts against the expert's.

Every layout of a task starts the hand at the same place, so the only thing that tells one layout's first action
from another's is what the cameras see (reach: the goal). For each of the first ``--layouts`` demonstrations of
``--task`` in the dataset, the policy predicts a chunk from the demonstration's first observation; the table
compares the spread of the predicted first actions across layouts with the spread of the expert's (a policy
that ignores the goal predicts the same action everywhere: spread near 0) and gives the mean error.

    python benchmarks/goal_reading.py runs/fast-wam-budget --task reach-v3 --layouts 20

With ``--reliance STEP`` (a run folder), the same question asked of training: the action losses on the task's
windows that start ``STEP`` steps into an episode, with each window's own images and with another layout's
(the images rolled over the windows; ``rgb``: the world model's frames, ``step_rgb``: the per-step observations
where the policy reads them), averaged over noise draws. A policy that reads the layout from the images loses
much more with another layout's images (Fast-WAM at an episode's start on button-press-topdown: 0.018 -> 0.514).

    python benchmarks/goal_reading.py runs/aha-wam-front-hour-tips --task button-press-topdown-v3 --reliance 0
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


def reliance(run: Path, task: str, step: int, windows: int = 24, draws: int = 4) -> dict[str, dict[str, float]]:
    """Action losses of ``run``'s policy on ``task``'s windows ``step`` steps into an episode: own images, then
    each image field replaced by another window's (see module doc)."""
    from dataclasses import replace

    import yaml

    from wamzoo.recipes import compose
    from wamzoo.training import make_datamodule

    folder = run if run.is_dir() else run.parent.parent  # a run, or one of its checkpoints
    name = yaml.safe_load((folder / "hparams.yaml").read_text())["recipe"]["name"]
    dm = make_datamodule(compose(name, ["trainer.num_workers=0"]))
    dm.setup("fit")
    w = dm.windows()
    start, task_id = w.frames.start, w.tasks.index(task)
    picked = [i for i, t in enumerate(w.samples) if t == start[t] + step and w.task_id[t] == task_id][:windows]
    if len(picked) < 2:
        raise SystemExit(f"fewer than 2 episodes of {task} last {step} steps in {name}'s data")
    batch = Batch.collate([w[i] for i in picked])
    policy = load_policy(str(run)).eval()
    other = torch.roll(torch.arange(len(picked)), 1)
    fields = [f for f in ("rgb", "step_rgb") if getattr(batch, f, None) is not None]
    variants = {"own images": {}, **{f"another layout's {f}": {f: getattr(batch, f)[other]} for f in fields}}
    out = {}
    for label, change in variants.items():
        b, losses = replace(batch, **change), {}
        for seed in range(draws):
            with torch.no_grad():
                _, logs = policy.compute_loss(b, generator=torch.Generator().manual_seed(seed))
            for key, value in logs.items():
                if "action" in key:
                    losses[key] = losses.get(key, 0.0) + float(value) / draws
        out[label] = losses
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("policy", help="run folder, checkpoint or pretrained name")
    p.add_argument("--task", default="reach-v3")
    p.add_argument("--layouts", type=int, default=20)
    p.add_argument("--data", default="data/metaworld/mw-easy-64-50ep")
    p.add_argument("--reliance", type=int, metavar="STEP",
                   help="the training-loss question (a run folder or one of its checkpoints; see above)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.reliance is not None:
        table = reliance(Path(args.policy), args.task, args.reliance)
        keys = sorted({k for v in table.values() for k in v})
        print(f"{args.policy} on {args.task}: action losses of windows {args.reliance} steps into an episode")
        print("| images | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        for label, losses in table.items():
            print(f"| {label} | " + " | ".join(f"{losses[k]:.3f}" for k in keys) + " |")
        return 0
    pred, rec = first_actions(load_policy(args.policy).eval(), Path(args.data), args.task, args.layouts)
    print(f"{args.policy} on {args.task}, first action of {len(pred)} training layouts")
    print("| axis | expert spread (std) | policy spread (std) | mean abs error |")
    print("|---|---:|---:|---:|")
    for i, a in enumerate(AXES):
        print(f"| {a} | {rec[:, i].std():.3f} | {pred[:, i].std():.3f} | {np.abs(pred[:, i] - rec[:, i]).mean():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
