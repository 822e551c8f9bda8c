"""The cyclic garbage collector paused while a run measures and writes (`walkcover._gc`): resumed
after the last block, whatever happened in it, and left off when the caller turned it off."""

from __future__ import annotations

import gc
import threading

import pytest

from conftest import run_python
from walkcover._gc import collector_paused


@pytest.fixture(autouse=True)
def _collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


def test_paused_in_the_block_and_resumed_after_even_on_error():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_resumed_only_after_the_last_of_two_threads_blocks():
    inside, leave = threading.Event(), threading.Event()

    def other():
        with collector_paused():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with collector_paused():
        t.start()  # its block starts inside this one and ends after it
        assert inside.wait(10)
    assert not gc.isenabled()  # the other thread's block still runs
    leave.set()
    t.join()
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_importing_and_running_leave_the_collector_on(sample_cache):
    child = (
        "import gc, walkcover as wc\n"
        "assert gc.isenabled(), 'import'\n"
        f"res = wc.assess('helsinki-sample', district='sample-sw', standard='toilet', "
        f"cache_dir={str(sample_cache)!r})\n"
        "assert gc.isenabled(), 'assess'\n"
        "print('on')"
    )
    assert run_python(child) == "on"
