"""The pieces of ``benchmarks/lerobot_latency.py`` that run without LeRobot: the call protocol with the other
process (its chatter ignored), interleaved timing, the summary."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lerobot_latency as bench  # noqa: E402

FAKE = """
import sys, time
print("Loading weights from local directory", flush=True)   # chatter, as LeRobot prints
print("@ready", flush=True)
for n, line in enumerate(sys.stdin):
    if line.strip() != "call":
        break
    print("noise", flush=True)
    print(f"@{0.001 * (n + 1)}", flush=True)
"""


def test_the_other_side_takes_turns_and_reports_its_own_time():
    server = bench.Server([sys.executable, "-c", FAKE])
    order = []
    try:
        theirs, (ours, plain) = bench.interleave(lambda: order.append("theirs") or server(),
                                                 (lambda: order.append("ours"), lambda: order.append("plain")),
                                                 repeats=3, warmup=2)
    finally:
        server.close()
    assert order == ["theirs", "ours", "plain"] * 5
    assert theirs == pytest.approx([0.003, 0.004, 0.005]) and len(ours) == len(plain) == 3  # warm-up rounds dropped
    assert bench.summary([0.001, 0.002, 0.010]) == {"median_ms": 2.0, "p90_ms": 10.0}


def test_a_side_that_dies_says_so():
    with pytest.raises(RuntimeError, match="ended"):
        bench.Server([sys.executable, "-c", "print('no protocol here')"])
