"""Per-chunk latency of wamzoo against LeRobot on the same FastWAM, side by side in one run.

    python benchmarks/lerobot_latency.py                     # tiny and paper-proportion configs, 1 thread
    python benchmarks/lerobot_latency.py --configs paper --threads 2 --repeats 30

For each config LeRobot (in its own Python 3.12 environment, ``--venv``, made with LeRobot pinned when
missing) builds and saves a FastWAM with its own code (``benchmarks/lerobot_side.py build``); wamzoo loads
that folder by path (``wamzoo.load``: the ``fast-wam.lerobot`` converter) and must give LeRobot's action
chunk for the same observation and noise, on its fast path and on its reference path
(:mod:`wamzoo.fastpath`), before anything is timed: max |diff| <= 1e-5 x max(1, max |action|) (float32
rounding grows with the actions' scale; they are unnormalised). Then LeRobot's process (``lerobot_side.py
serve``) and this one take turns, one call of each per round after warm-up (LeRobot, wamzoo fast, wamzoo
reference), at the same thread count; each side times its own call (``preprocessor -> predict_action_chunk
-> postprocessor`` for LeRobot, ``predict_action`` for wamzoo: both normalise, resize, encode, denoise and
unnormalise). Writes ``results/lerobot_latency.md`` and ``.json``: medians, p90 and the ratios to LeRobot.
Not run in CI (the environment is GBs); its pieces are tested in ``tests/test_lerobot_latency.py``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

SIDE = Path(__file__).resolve().parent / "lerobot_side.py"
LEROBOT = "lerobot[fastwam]==0.6.1"
OUT = report.ROOT / "results" / "lerobot_latency.md"


def lerobot_venv(venv: Path) -> Path:
    """The Python of ``venv``, creating it with a Python 3.12 and ``LEROBOT`` when it does not exist."""
    python = venv / "bin" / "python"
    if python.is_file():
        return python
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    base = found[-1] if found else "python3.12"
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", LEROBOT], check=True)
    return python


class Server:
    """A process that answers each ``call`` line with ``@SECONDS``, the time its call took (``lerobot_side.py
    serve``; it says ``@ready`` first, and any line without ``@`` is its own chatter)."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     stderr=subprocess.DEVNULL)
        if self._answer() != "ready":
            raise RuntimeError(f"{argv[:3]} did not start")

    def _answer(self) -> str:
        for line in self.proc.stdout:
            if line.startswith("@"):
                return line[1:].strip()
        raise RuntimeError(f"{self.argv[:3]} ended (exit {self.proc.wait()})")

    def __call__(self) -> float:
        self.proc.stdin.write("call\n")
        self.proc.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def interleave(theirs: Callable[[], float], ours: Sequence[Callable[[], None]], repeats: int, warmup: int):
    """Seconds of ``repeats`` rounds (after ``warmup``), one call of each per round (theirs reports its own
    time, then each of ours in turn): ``(theirs, [seconds of each of ours])``."""
    a, b = [], [[] for _ in ours]
    for r in range(warmup + repeats):
        t = theirs()
        mine = []
        for call in ours:
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        if r >= warmup:
            a.append(t)
            for times, m in zip(b, mine):
                times.append(m)
    return a, b


def summary(seconds: list[float]) -> dict:
    ms = sorted(1e3 * s for s in seconds)
    return {"median_ms": statistics.median(ms), "p90_ms": ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]}


def wamzoo_side(folder: Path):
    """wamzoo's calls on the reference observation (fast paths on, then off: :mod:`wamzoo.fastpath`), the larger
    max |wamzoo - LeRobot| of the two, and the scale of LeRobot's chunk (max |action|, at least 1)."""
    import torch
    from safetensors.torch import load_file

    import wamzoo
    from wamzoo import fastpath
    from wamzoo.batch import Batch

    policy = wamzoo.load(str(folder)).eval()
    ref = load_file(str(folder / "reference.safetensors"))
    obs = Batch(rgb=torch.stack([ref["rgb_front"][0], ref["rgb_wrist"][0]])[None, None], state=ref["state"],
                instruction=ref["context"], instruction_mask=ref["context_mask"])
    seed = int(ref["seed"])

    def fast():
        return policy.predict_action(obs, seed=seed)

    def reference():
        with fastpath.reference():
            return policy.predict_action(obs, seed=seed)

    with torch.inference_mode():
        diff = max(float((call() - ref["action"]).abs().max()) for call in (fast, reference))
    scale = max(1.0, float(ref["action"].abs().max()))
    params = sum(p.numel() for n, p in policy.named_parameters() if not n.startswith("codec.")) / 1e6
    return (fast, reference), diff, scale, params


def main(argv=None) -> int:
    import torch
    from huggingface_hub import constants

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "paper"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--venv", default=os.environ.get("LEROBOT_VENV", "/work/lerobot-venv"))
    args = p.parse_args(argv)
    python = lerobot_venv(Path(args.venv))
    torch.set_num_threads(args.threads)
    constants.HF_HUB_OFFLINE = True
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), **report.ENV}
    version = subprocess.run([str(python), "-c", "import lerobot; print(lerobot.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    rows = []
    for config in args.configs:
        folder = Path(tempfile.mkdtemp(prefix=f"lerobot-{config}-"))
        subprocess.run([str(python), str(SIDE), "build", config, str(folder)], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (fast, plain), diff, scale, params = wamzoo_side(folder)
        if diff > 1e-5 * scale:
            raise SystemExit(f"{config}: wamzoo's chunk differs from LeRobot's by {diff:.3g} (> 1e-5 x {scale:.3g});"
                             " not timed")
        server = Server([str(python), str(SIDE), "serve", str(folder), str(args.threads)], env)
        try:
            with torch.inference_mode():
                theirs, (mine, mine_plain) = interleave(server, (fast, plain), args.repeats, args.warmup)
        finally:
            server.close()
        lr, wz, wz_plain = summary(theirs), summary(mine), summary(mine_plain)
        rows.append({"config": config, "params_m": params, "max_abs_diff": diff, "max_abs_action": scale, "lerobot": lr,
                     "wamzoo": wz, "wamzoo_reference": wz_plain, "ratio": wz["median_ms"] / lr["median_ms"],
                     "ratio_reference": wz_plain["median_ms"] / lr["median_ms"]})
    command = " ".join(["python benchmarks/lerobot_latency.py", *(argv if argv is not None else sys.argv[1:])])
    record = {"command": command, "lerobot": version, "torch": torch.__version__, "threads": args.threads,
              "repeats": args.repeats, "warmup": args.warmup, "rows": rows}
    OUT.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    table = [[r["config"], f"{r['params_m']:.2f}", f"{r['max_abs_diff']:.1e} / {r['max_abs_action']:.3g}", f"{r['lerobot']['median_ms']:.1f}",
              f"{r['lerobot']['p90_ms']:.1f}", f"{r['wamzoo_reference']['median_ms']:.1f}",
              f"{r['ratio_reference']:.2f}x", f"{r['wamzoo']['median_ms']:.1f}", f"{r['wamzoo']['p90_ms']:.1f}",
              f"**{r['ratio']:.2f}x**"] for r in rows]
    lines = report.header("Per-chunk latency: wamzoo and LeRobot on the same FastWAM", "benchmarks/lerobot_latency.py",
                          f"LeRobot {version} (its own Python 3.12 environment) and wamzoo on this machine's CPU,"
                          f" {args.threads} thread(s) each, {args.repeats} interleaved rounds after {args.warmup}"
                          " warm-up; the same observation and noise, the same action chunk (max |diff| below).")
    lines += report.table(["config", "params (M, no VAE)", "max abs diff / max abs action", "LeRobot median ms", "LeRobot p90",
                           "wamzoo reference median ms", "reference / LeRobot", "wamzoo median ms", "wamzoo p90",
                           "wamzoo / LeRobot"], table, "lrrrrrrrrr")
    lines += ["", "Configs (`benchmarks/lerobot_side.py`): `tiny` is the LeRobot fixture's FastWAM; `paper` has the"
              " papers' proportions at a small width (video 384 = 3x the action expert's 128, FFN 14/3 and 4x, 64-wide"
              " heads, 128 video tokens per frame, 10 steps); both use a tiny random Wan2.2-layout VAE. wamzoo's fast paths"
              " (`wamzoo/fastpath.py`): the one-frame VAE encoder (2-D convolutions, no cache for frames that do not"
              " follow), one product for self-attention's Q/K/V, and a prefill that stops its last layer after the"
              " keys/values (half of a 2-layer prefill's remaining work, 1/30 of a 30-layer one's); both paths share"
              " exact savings: steps after one prefill reuse its token selection and attention masks, AdaLN and RoPE"
              " set up once per pass. The machine may be shared while this runs: calls are interleaved, so the ratios"
              " hold where the absolute times do not.", ""]
    report.publish(lines, command, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
