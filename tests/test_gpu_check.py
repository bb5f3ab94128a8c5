"""``benchmarks/gpu_check.sh --device cpu``: the GPU check's code at tiny sizes (the GPU run is the same code)."""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_on_the_cpu_at_tiny_sizes(tmp_path):
    out = tmp_path / "gpu_check.md"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--repeats", "1",
                           "--warmup", "0", "--train-steps", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["size"] == "tiny" and record["dtype"] == "bfloat16" and record["tests"]["returncode"] == 0
    rows = {r["row"]: r for r in record["latency"]}
    assert set(rows) == {"Fast-WAM", "Fast-WAM Joint", "Fast-WAM IDM", "AHA-WAM", "X-WAM synchronous",
                         "X-WAM asynchronous"}
    assert all(r["median_ms"] > 0 for r in rows.values()) and "executor_ms" in rows["AHA-WAM"]["coupling"]
    assert record["training"]["steps"] == 2 and "| Fast-WAM |" in out.read_text()
