"""Alpaca's 200 requests/minute: one budget in a process, and one across the processes sharing a store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tokenomics.adapters.alpaca_http import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t, self.slept = 1_000.0, []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_the_request_past_the_budget_waits_for_the_oldest_to_leave_the_window():
    c = Clock()
    lim = RateLimiter(3, sleep=c.sleep, clock=c)
    for dt in (0, 10, 10):
        c.t += dt
        lim.acquire()
    assert c.slept == []
    lim.acquire()  # the 4th within 60 s of the first
    assert c.slept == [pytest.approx(40.0)]
    c.t += 60
    lim.acquire()
    assert len(c.slept) == 1


def test_limiters_on_one_file_share_the_budget(tmp_path):
    c = Clock()
    a = RateLimiter(3, sleep=c.sleep, clock=c, path=tmp_path / "budget")
    b = RateLimiter(3, sleep=c.sleep, clock=c, path=tmp_path / "budget")
    a.acquire()
    a.acquire()
    c.t += 5
    b.acquire()
    assert c.slept == []
    b.acquire()  # a's two requests count against b
    assert c.slept == [pytest.approx(55.0)]


def test_separate_processes_share_the_budget_through_the_file(tmp_path):
    code = ("import sys; from tokenomics.adapters.alpaca_http import RateLimiter; "
            "lim = RateLimiter(5, sleep=lambda s: print(f'slept {s:.2f}'), path=sys.argv[1]); "
            "[lim.acquire() for _ in range(int(sys.argv[2]))]")
    first = subprocess.run([sys.executable, "-c", code, str(tmp_path / "budget"), "5"], capture_output=True, text=True)
    assert first.returncode == 0 and first.stdout == "", first.stderr
    second = subprocess.run([sys.executable, "-c", code, str(tmp_path / "budget"), "1"], capture_output=True,
                            text=True)
    assert second.returncode == 0, second.stderr
    (word, seconds) = second.stdout.split()
    assert word == "slept" and 50 < float(seconds) <= 60  # the first process used all 5 slots a moment ago
