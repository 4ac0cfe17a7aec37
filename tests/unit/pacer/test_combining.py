import threading

import pytest

from pacer._combining import Combiner


def test_calls_waiting_together_run_as_one_batch() -> None:
    batches: list[list[int]] = []
    first_running = threading.Event()
    release = threading.Event()

    def batch(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            first_running.set()
            release.wait(5)
        return [item * 10 for item in items]

    combine: Combiner[int, int] = Combiner(batch)
    results: dict[int, list[int]] = {}

    def call(items: list[int]) -> None:
        results[items[0]] = combine(items)

    first = threading.Thread(target=call, args=([1],))
    first.start()
    assert first_running.wait(5)
    waiting = [threading.Thread(target=call, args=([n, n + 1],)) for n in (2, 4, 6)]
    for thread in waiting:
        thread.start()
    while len(combine._queued) < 3:  # all three queued behind the running batch
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert batches[0] == [1]
    assert sorted(batches[1]) == [2, 3, 4, 5, 6, 7] and len(batches) == 2
    assert results == {1: [10], 2: [20, 30], 4: [40, 50], 6: [60, 70]}


def test_an_error_reaches_every_call_of_its_batch() -> None:
    def batch(items: list[int]) -> list[int]:
        raise RuntimeError(f"boom {items}")

    combine: Combiner[int, int] = Combiner(batch)
    with pytest.raises(RuntimeError, match=r"boom \[1, 2\]"):
        combine([1, 2])
