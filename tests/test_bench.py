"""``wamzoo bench``'s timing loop: round-robin over the targets, background work settled untimed."""

from wamzoo.bench import time_calls
from wamzoo.policy import Laps


def test_calls_go_round_robin_and_settle_after_each_call():
    order = []
    times = time_calls([lambda: order.append("a"), lambda: order.append("b")], repeats=3, warmup=1,
                       settle=[lambda: order.append("a settled"), None])
    assert order == ["a", "a settled", "b"] * 4  # one warm-up round, then three timed rounds
    assert [len(t) for t in times] == [3, 3] and all(x >= 0 for t in times for x in t)


def test_laps_charge_each_part_the_time_since_the_last_lap(monkeypatch):
    clock = iter([10.0, 10.5, 12.0, 12.25, 13.0])
    monkeypatch.setattr("wamzoo.policy.time.perf_counter", lambda: next(clock))
    laps = Laps()
    for part in ("encode", "denoise", "prefill", "denoise"):
        laps.lap(part)
    assert laps.seconds == {"encode": 0.5, "denoise": 1.5 + 0.75, "prefill": 0.25}

