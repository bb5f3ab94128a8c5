"""Benchmarks as commands: per-chunk inference latency and training throughput.

``wamzoo bench latency A B C`` times ``predict_action`` of each target on identical inputs
(median and p90 over repeated calls after warm-up) and prints the ratio to the first target, and
where each call's time goes (the parts :class:`wamzoo.policy.Laps` times: encode, prefill, denoise,
finish). The calls go round-robin over the targets (A, B, C, A, B, C, ...), so a change of the
machine's load during the run falls on every target alike and the ratios stay comparable; a
coupling with background work (AHA-WAM's planner thread) is let finish it between calls
(``wait_idle()``, untimed) so that it never runs inside another target's timing. A coupling may report finer timings of the same calls through ``Coupling.timings()`` (e.g. AHA-WAM's
executor per chunk and its amortised time with the planner refresh counted); they are added to the
target's row and printed in a second table, ``*_ms`` ones with the first target's median over them.
``wamzoo bench train T`` times optimiser steps and reports samples/s, peak memory, and achieved
FLOP/s as a fraction of this machine's fp32 matmul peak measured in the same run. Both print a
rich table and write one JSON object per target with plain numeric fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from rich.console import Console
from rich.table import Table

from wamzoo import fastpath
from wamzoo.batch import Batch
from wamzoo.interfaces import Phase
from wamzoo.data.info import DataInfo
from wamzoo.loading import policy_for_target
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose

console = Console()


def dummy_batch(info: DataInfo, batch_size: int = 1, train: bool = False, seed: int = 0) -> Batch:
    """A batch shaped like ``info`` (random pixels, zero state, task 0)."""
    g = torch.Generator().manual_seed(seed)
    T = info.n_obs + (info.n_future if train else 0)
    rgb = torch.randint(0, 256, (batch_size, T, info.num_views, 3, info.height, info.width), generator=g,
                        dtype=torch.uint8)
    batch = Batch(rgb=rgb, n_obs=info.n_obs, state=torch.zeros(batch_size, info.state_dim) if info.state_dim else None,
                  task_id=torch.zeros(batch_size, dtype=torch.long) if info.tasks else None)
    if train:
        batch.action = torch.randn(batch_size, info.horizon, info.action_dim, generator=g)
        batch.action_pad = torch.zeros(batch_size, info.horizon, dtype=torch.bool)
    return batch


#: Parts of a call timed by :class:`wamzoo.policy.Laps`, reported as ``part_<name>_ms``.
PARTS, PART = ("encode", "prefill", "denoise", "finish"), "part_"


def _plan_with_action_steps(policy: WAMPolicy, steps: int | None) -> list[Phase]:
    """The scheduler's plan with every action stream denoised in ``steps`` steps (``None``: as planned)."""
    plan = policy.scheduler.plan()
    if not steps:
        return plan
    produced = policy.action_expert.streams_produced
    return [dataclasses.replace(p, steps={n: steps if n in produced else k for n, k in p.steps.items()})
            for p in plan]


def time_calls(fns: Sequence[Callable[[], Any]], repeats: int, warmup: int,
               settle: Sequence[Callable[[], Any] | None] = ()) -> list[list[float]]:
    """Wall-clock seconds of ``repeats`` calls of each of ``fns``, taken round-robin after ``warmup``
    rounds so that load changes during the run affect every function alike; ``settle[i]`` (untimed)
    runs after each call of ``fns[i]``."""
    settle = list(settle) or [None] * len(fns)
    out: list[list[float]] = [[] for _ in fns]
    for r in range(warmup + repeats):
        for fn, after, ts in zip(fns, settle, out):
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                ts.append(time.perf_counter() - t0)
            if after is not None:
                after()
    return out


def _quantile(xs: Sequence[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def latency(targets: Sequence[str], steps: int | None = None, repeats: int = 20, warmup: int = 3,
            json_path: str | None = None, threads: int | None = None, overrides: Sequence[str] = (),
            device: str | None = None, dtype: str | None = None, reference: bool = False) -> list[dict]:
    """Per-chunk latency of each target on ``device`` at ``dtype`` (``reference``: with the inference fast
    paths off, :mod:`wamzoo.fastpath`); returns the JSON rows."""
    if threads:
        torch.set_num_threads(threads)
    calls = []
    for target in targets:
        policy, kind = policy_for_target(target, list(overrides), device, dtype)
        plan = _plan_with_action_steps(policy, steps)
        obs = dummy_batch(policy.info)

        parts: list[dict[str, float]] = []

        def call(policy=policy, obs=obs, parts=parts, plan=plan):
            policy.predict(obs, generator=torch.Generator().manual_seed(0), plan=plan)
            if policy.device.type == "cuda":
                torch.cuda.synchronize(policy.device)
            parts.append(policy.last_timings)

        policy.reset()
        calls.append((target, kind, policy, call, parts))
    path = fastpath.reference() if reference else contextlib.nullcontext()
    with torch.inference_mode(), path:
        times = time_calls([c[3] for c in calls], repeats, warmup,
                           [c[2].coupling.wait_idle for c in calls])
    rows: list[dict[str, Any]] = []
    for (target, kind, policy, _, parts), ts in zip(calls, times):
        row = {"target": target, "source": kind, "median_ms": 1e3 * statistics.median(ts),
               "p90_ms": 1e3 * _quantile(ts, 0.9), "mean_ms": 1e3 * statistics.fmean(ts),
               "repeats": repeats, "params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
               "threads": torch.get_num_threads(), "device": str(policy.device),
               "dtype": str(policy.dtype).removeprefix("torch."), "path": "reference" if reference else "fast"}
        timed = parts[-repeats:]
        row.update({f"{PART}{k}_ms": 1e3 * statistics.median(d.get(k, 0.0) for d in timed) for k in PARTS})
        extra = {k: float(v) for k, v in policy.coupling.timings().items()}
        row.update(extra, extra_metrics=sorted(extra))
        rows.append(row)
    base = rows[0]["median_ms"]
    for row in rows:
        row["ratio_to_first"] = row["median_ms"] / base
        row["first_over_this"] = base / row["median_ms"]
        for k in row["extra_metrics"]:
            if k.endswith("_ms") and row[k] > 0:
                row[f"first_over_{k}"] = base / row[k]
    where = f"{rows[0]['device']}, {rows[0]['dtype']}, {torch.get_num_threads()} threads"
    table = Table(title=f"per-chunk latency ({repeats} calls after {warmup} warm-up; {where})")
    for col in ("target", "source", "params (M)", "median ms", "p90 ms", "x first"):
        table.add_column(col, justify="right" if col not in ("target", "source") else "left")
    for r in rows:
        table.add_row(r["target"], r["source"], f"{r['params_m']:.2f}", f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}",
                      f"{r['ratio_to_first']:.2f}")
    console.print(table)
    table = Table(title="where a call's time goes (median ms of each part, WAMPolicy.predict)")
    table.add_column("target")
    for k in PARTS:
        table.add_column(k, justify="right")
    for r in rows:
        table.add_row(r["target"], *(f"{r[f'{PART}{k}_ms']:.1f}" for k in PARTS))
    console.print(table)
    if any(r["extra_metrics"] for r in rows):
        table = Table(title="timings reported by the couplings (same calls)")
        for col in ("target", "metric", "value", "first median / value"):
            table.add_column(col, justify="left" if col in ("target", "metric") else "right")
        for r in rows:
            for k in r["extra_metrics"]:
                ratio = r.get(f"first_over_{k}")
                table.add_row(r["target"], k, f"{r[k]:.2f}", "" if ratio is None else f"{ratio:.2f}")
        console.print(table)
    _write(json_path, rows)
    return rows


def matmul_peak_flops(n: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matmul FLOP/s of this machine (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(time_calls([lambda: a @ b], repeats, 2)[0])
    return 2 * n**3 / best


def train_step(target: str, steps: int | None = None, json_path: str | None = None, threads: int | None = None,
               overrides: Sequence[str] = ()) -> dict:
    """Training throughput of a recipe on one batch of its own data (extras included), fetched before timing,
    with the optimiser and the thread count training uses (``trainer.threads``, unless ``threads`` is given);
    the matmul peak is measured at that thread count."""
    from torch.utils.flop_counter import FlopCounterMode

    from wamzoo.training import make_datamodule, optimizer  # Lightning's import is slow: only for training

    steps = steps or 10
    recipe = compose(target, [*overrides, "trainer.num_workers=0"])
    if threads or recipe.trainer.threads:
        torch.set_num_threads(threads or recipe.trainer.threads)
    data = make_datamodule(recipe)
    policy = WAMPolicy.from_config(recipe.policy, data.describe()).train()
    opt = optimizer(policy, recipe.trainer)  # the optimiser training uses
    batch = next(iter(data.train_dataloader()))

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        loss, _ = policy.compute_loss(batch, generator=torch.Generator().manual_seed(0))
        loss.backward()
    flops = counter.get_total_flops()
    times = time_calls([step], steps, 2)[0]
    peak = matmul_peak_flops()
    step_s = statistics.median(times)
    row = {"target": target, "step_s": step_s, "samples_per_s": recipe.trainer.batch_size / step_s,
           "batch_size": recipe.trainer.batch_size, "steps": steps,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "flops_per_step": float(flops), "achieved_flops": flops / step_s, "matmul_peak_flops": peak,
           "mfu": flops / step_s / peak, "params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
           "threads": torch.get_num_threads()}
    table = Table(title=f"training step ({platform.machine()}, {torch.get_num_threads()} threads)")
    for col in ("target", "params (M)", "step s", "samples/s", "peak RSS MB", "GFLOP/step", "fraction of matmul peak"):
        table.add_column(col)
    table.add_row(target, f"{row['params_m']:.2f}", f"{step_s:.3f}", f"{row['samples_per_s']:.1f}",
                  f"{row['peak_rss_mb']:.0f}", f"{flops / 1e9:.2f}", f"{row['mfu']:.1%}")
    console.print(table)
    _write(json_path, [row])
    return row


def _write(path: str | None, rows: list[dict]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(rows, indent=2))
        console.print(f"wrote {path}")
