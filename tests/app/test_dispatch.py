"""The dispatcher's bounds: a burst of searches all sent, a blocked broker refused in time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.dispatch import MAX_PENDING_SENDS, SLOT_WAIT_S, BrokerUnavailable, Dispatcher


def test_a_burst_larger_than_the_send_slots_is_all_sent():
    """Twenty searches at once while each send takes a while (new connections): none refused."""
    sent = []

    def slow_send(job_id: str) -> None:
        time.sleep(0.2)
        sent.append(job_id)

    dispatch = Dispatcher(slow_send, timeout_s=5.0)
    jobs = [f"job-{k}" for k in range(2 * MAX_PENDING_SENDS + 4)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(dispatch, jobs))  # re-raises a BrokerUnavailable
    assert sorted(sent) == sorted(jobs)


def test_a_blocked_broker_refuses_the_sends_beyond_the_slots_within_the_slot_wait():
    release = threading.Event()
    dispatch = Dispatcher(lambda _: release.wait(30), timeout_s=5.0)
    try:
        with ThreadPoolExecutor(MAX_PENDING_SENDS) as pool:
            waiting = [pool.submit(dispatch, f"job-{k}") for k in range(MAX_PENDING_SENDS)]
            time.sleep(0.3)  # every slot taken by a send the broker does not confirm
            started = time.perf_counter()
            with pytest.raises(BrokerUnavailable, match="still waiting"):
                dispatch("one-more")
            assert time.perf_counter() - started < SLOT_WAIT_S + 0.5
            for future in waiting:
                with pytest.raises(BrokerUnavailable, match="did not confirm"):
                    future.result(timeout=10)
    finally:
        release.set()
