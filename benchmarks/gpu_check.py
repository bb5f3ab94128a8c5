"""The GPU check: device tests, bfloat16 per-chunk latency of the papers' models at their real sizes, and a
20-step bfloat16 training at the papers' size with its peak memory; writes ``results/gpu_check.md``.

    bash benchmarks/gpu_check.sh                  # one GPU (fits 10 minutes on an H100)
    bash benchmarks/gpu_check.sh --device cpu     # the same code at tiny sizes (CI)

At the papers' sizes the weights are random, built directly on the device, with the Wan2.2 VAE's real
architecture (``WAN22_VAE``, random weights: no download); latency does not depend on the weights.
Rows: Fast-WAM, its Joint and IDM variants, AHA-WAM (the executor's call and the planner's refresh,
timed by its coupling), X-WAM synchronous vs asynchronous; beside each, the paper's figure (measured
on its authors' GPUs, not comparable one to one: a reference point). On a CPU the rows are the same
recipes' tiny twins.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

#: ``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` ``vae/config.json``: the architecture (latent statistics left neutral).
WAN22_VAE = {"base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
             "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0, "in_channels": 12,
             "out_channels": 12, "is_residual": True, "patch_size": 2, "scale_factor_spatial": 16,
             "scale_factor_temporal": 4, "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48}
#: Overrides giving a paper recipe's ``wan-vae`` codec that architecture instead of the pretrained download.
RANDOM_VAE = ["policy.codec.pretrained=null", "policy.codec.subfolder=null", f"policy.codec.config={json.dumps(WAN22_VAE)}"]
#: (row, recipe at the papers' size, its tiny twin, overrides, the paper's figure in ms and what it times)
ROWS = [
    ("Fast-WAM", "fast-wam-paper", "fast-wam-tiny", [], (190, "Fast-WAM paper, per chunk")),
    ("Fast-WAM Joint", "fast-wam-paper", "fast-wam-joint-tiny",
     ["policy.coupling.variant=joint", "policy.scheduler.phases=[{video: 10, action: 10}]"], (580, "Fast-WAM paper")),
    ("Fast-WAM IDM", "fast-wam-paper", "fast-wam-idm-tiny",
     ["policy.coupling.variant=idm", "policy.scheduler.phases=[{video: 10}, {action: 10}]"], (810, "Fast-WAM paper")),
    ("AHA-WAM", "aha-wam-paper", "aha-wam-tiny", [], (41.37, "AHA-WAM paper, executor per chunk")),
    ("X-WAM synchronous", "x-wam-paper", "x-wam-sync-tiny",
     ["policy.scheduler.schedule=synchronous", "policy.scheduler.action_steps=50"], (4665, "X-WAM paper")),
    ("X-WAM asynchronous", "x-wam-paper", "x-wam-tiny", [], (1033, "X-WAM paper")),
]


def build(recipe: str, overrides: list[str], device: str, dtype: str, paper: bool):
    """A policy of ``recipe`` with random weights made on ``device`` at ``dtype`` (the Wan2.2 VAE's architecture
    at the papers' size)."""
    import torch

    from wamzoo.policy import WAMPolicy
    from wamzoo.recipes import compose
    from wamzoo.runtime import resolve_device
    from wamzoo.training import make_datamodule

    if paper:
        overrides = [*overrides, *RANDOM_VAE]
    composed = compose(recipe, overrides)
    info = make_datamodule(composed).describe()
    with torch.device(resolve_device(device)):
        policy = WAMPolicy.from_config(composed.policy, info)
    return policy.place(device, dtype).eval(), info


def latency(rows, device: str, dtype: str, paper: bool, repeats: int, warmup: int) -> list[dict]:
    import torch

    from wamzoo.bench import _quantile, dummy_batch

    out = []
    for name, big, tiny, overrides, (paper_ms, source) in rows:
        policy, info = build(big if paper else tiny, overrides if paper else [], device, dtype, paper)
        obs = dummy_batch(info)
        times, parts = [], []
        policy.reset()
        with torch.inference_mode():
            for r in range(warmup + repeats):
                t0 = time.perf_counter()
                policy.predict(obs)
                if policy.device.type == "cuda":
                    torch.cuda.synchronize()
                if r >= warmup:
                    times.append(1e3 * (time.perf_counter() - t0))
                    parts.append(policy.coupling.timings())
                policy.coupling.wait_idle()
        times.sort()
        row = {"row": name, "recipe": big if paper else tiny, "overrides": overrides if paper else [],
               "params_b": sum(p.numel() for p in policy.parameters()) / 1e9, "median_ms": times[len(times) // 2],
               "p90_ms": _quantile(times, 0.9), "paper_ms": paper_ms, "paper_source": source,
               "coupling": {k: float(v) for k, v in (parts[-1] if parts else {}).items()}}
        out.append(row)
        del policy
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return out


def training(device: str, paper: bool, steps: int) -> dict:
    """``steps`` bfloat16 (``bf16-true``) optimiser steps of the Fast-WAM recipe on the device; peak memory."""
    import tempfile

    import torch

    from wamzoo.recipes import compose
    from wamzoo.training import train

    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    over = [f"trainer.max_steps={steps}", f"trainer.accelerator={accelerator}", "trainer.precision=bf16-true",
            "trainer.batch_size=1", "trainer.num_workers=0", "trainer.threads=null", f"trainer.ckpt_every={steps}",
            "policy.coupling.grad_checkpoint=true"]
    if paper:
        over += RANDOM_VAE
    recipe = compose("fast-wam-paper" if paper else "fast-wam-tiny", over)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(recipe, out_dir=tmp)
    return {"recipe": recipe.name, "steps": steps, "seconds": time.perf_counter() - t0, "overrides": over,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}


def device_tests(device: str) -> dict:
    env = {**os.environ, "WAMZOO_TEST_DEVICE": device}
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "device", "-p", "no:cacheprovider", "tests/test_device.py"]
    proc = subprocess.run(cmd, cwd=report.ROOT, env=env, capture_output=True, text=True)
    return {"command": f"WAMZOO_TEST_DEVICE={device} " + " ".join(cmd[2:]), "returncode": proc.returncode,
            "summary": (proc.stdout.strip().splitlines() or [""])[-1]}


def main(argv=None) -> int:
    import torch

    from wamzoo.runtime import resolve_device

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--size", choices=("paper", "tiny"), default=None, help="default: paper on a GPU, tiny on a CPU")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--out", default=str(report.ROOT / "results" / "gpu_check.md"))
    args = p.parse_args(argv)
    device = str(resolve_device(args.device))
    paper = (args.size or ("paper" if device.startswith("cuda") else "tiny")) == "paper"
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"
    record = {"command": " ".join(["bash benchmarks/gpu_check.sh", *(argv if argv is not None else sys.argv[1:])]),
              "device": device, "device_name": name, "dtype": args.dtype, "size": "paper" if paper else "tiny",
              "torch": torch.__version__, "tests": device_tests(device),
              "latency": latency(ROWS, device, args.dtype, paper, args.repeats, args.warmup),
              "training": training(device, paper, args.train_steps)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    rows = [[r["row"], f"`{r['recipe']}`", f"{1e3 * r['params_b']:.1f}", f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}",
             f"{r['paper_ms']:g} ({r['paper_source']})",
             ", ".join(f"{k} {v:.1f}" for k, v in r["coupling"].items() if k.endswith("_ms"))] for r in record["latency"]]
    t = record["training"]
    lines = report.header(f"GPU check: {name} ({device}, {args.dtype}, {record['size']} sizes)", "benchmarks/gpu_check.py",
                          f"Command: `{record['command']}`; torch {torch.__version__}.")
    lines += [f"Device tests: `{record['tests']['command']}` -> {record['tests']['summary']}", ""]
    lines += report.table(["row", "recipe", "params (M)", "median ms / chunk", "p90 ms", "paper", "coupling timings"],
                          rows, "llrrrll")
    lines += ["", f"Training: {t['steps']} bf16-true steps of `{t['recipe']}` (batch 1, gradient checkpointing) in"
              f" {t['seconds']:.0f} s" + (f", peak memory {t['peak_gib']:.1f} GiB." if t["peak_gib"] else "."), ""]
    report.write_page("\n".join(lines) + "\n", out)
    print("\n".join(lines))
    return 0 if record["tests"]["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
