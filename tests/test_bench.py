"""``wamzoo bench``'s timing loop: round-robin over the targets, background work settled untimed."""

from wamzoo.bench import time_calls


def test_calls_go_round_robin_and_settle_after_each_call():
    order = []
    times = time_calls([lambda: order.append("a"), lambda: order.append("b")], repeats=3, warmup=1,
                       settle=[lambda: order.append("a settled"), None])
    assert order == ["a", "a settled", "b"] * 4  # one warm-up round, then three timed rounds
    assert [len(t) for t in times] == [3, 3] and all(x >= 0 for t in times for x in t)
