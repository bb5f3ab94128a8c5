"""Can the reach-v3 goal be read from the benchmark's images? A check of its views and goal marker.

A small CNN regresses the goal position from the first frame of ``--train`` training layouts and is
scored on ``--test`` evaluation layouts: mean error and the share within Meta-World's 5 cm success
radius, for both default views and each alone, with the benchmark's 4 cm goal marker and with
Meta-World's own 2 cm one. Predicting the mean goal is the floor.

    python benchmarks/metaworld_goal_probe.py [--train 800] [--test 200] [--epochs 150] [--size 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from wamzoo.envs.metaworld import EVAL_SEEDS, MetaWorldEnv

VIEWS = {"oblique+top": [0, 1], "oblique": [0], "top": [1]}


def first_frames(goal_radius: float | None, seeds: range, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    env = MetaWorldEnv("reach-v3", ("oblique", "top"), size, size, depth=False, split=split, goal_radius=goal_radius)
    frames, goals = [], []
    for s in seeds:
        obs, info = env.reset(seed=s)
        frames.append(obs["rgb"])
        goals.append(info["privileged"][-3:])
    env.close()
    return torch.from_numpy(np.stack(frames)).float() / 255, torch.from_numpy(np.stack(goals)).float()


def probe(train, test, views: list[int], epochs: int) -> torch.Tensor:
    """Goal errors (metres) on ``test`` of a CNN fitted on ``train``."""
    (x, y), (xt, yt) = train, test
    x, xt = x[:, views].flatten(1, 2), xt[:, views].flatten(1, 2)
    mu, sd = y.mean(0), y.std(0)
    side = x.shape[-1] // 8
    net = nn.Sequential(nn.Conv2d(x.shape[1], 32, 5, 2, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                        nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * side * side, 128),
                        nn.ReLU(), nn.Linear(128, 3))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(50):
            loss = ((net(x[idx]) - (y[idx] - mu) / sd) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (net(xt) * sd + mu - yt).norm(dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=800)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    print("| goal marker | views | goal error (cm) | within 5 cm |\n|---|---|---|---|")
    for radius in (0.04, None):
        train = first_frames(radius, range(args.train), "train", args.size)
        test = first_frames(radius, range(EVAL_SEEDS.start, EVAL_SEEDS.start + args.test), "eval", args.size)
        mean = (test[1] - train[1].mean(0)).norm(dim=1)
        marker = f"{radius or 0.02:.2f} m"
        print(f"| {marker} | none (predict the mean) | {100 * mean.mean():.1f} | {(mean < 0.05).float().mean():.0%} |")
        for name, views in VIEWS.items():
            err = probe(train, test, views, args.epochs)
            print(f"| {marker} | {name} | {100 * err.mean():.1f} | {(err < 0.05).float().mean():.0%} |", flush=True)
    print(f"\n{args.train} training / {args.test} evaluation layouts, {args.size} px, {args.epochs} epochs,"
          f" {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
