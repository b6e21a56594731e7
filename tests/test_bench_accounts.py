"""``bench/accounts.py`` at a tiny size, end to end: its own sandbox process, ``relay api``, ``relay worker`` and
the receiver, three accounts polled every 2 s. A smoke test of the benchmark, not a measurement: it checks that
the run ends with the one JSON line the issue asks for, and that what it measured is there (polls seen by the
sandbox, requests, an order's arrival), not how fast anything was."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_URL

ROOT = Path(__file__).resolve().parent.parent
PROC_STAT = Path("/proc/self/stat")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not PROC_STAT.exists(), reason="the benchmark reads CPU time from Linux's /proc"),
]

KEYS = {
    "max_accounts",
    "interval_s",
    "gap_p99_s",
    "cpu_us_per_resource_poll",
    "workers",
    "rss_mb",
    "redis_bytes_per_account",
    "requests_per_min_per_account",
    "arrival_p99_s",
}


def test_a_tiny_run_ends_with_its_figures_as_one_json_line() -> None:
    args = ["--accounts", "3", "--interval-s", "2", "--settle-s", "3", "--quiet-s", "3", "--measure-s", "6"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "accounts.py"), *args],
        cwd=ROOT,
        env={"RELAY_BENCH_REDIS_URL": BASE_URL, "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("$ .venv/bin/python bench/accounts.py --accounts 3 --interval-s 2.0")
    report = json.loads(lines[-1])
    assert set(report) >= KEYS
    assert report["interval_s"] == 2.0
    assert report["workers"] == 1
    (size,) = report["sizes"]
    assert size["accounts"] == 3
    # at a 2 s interval the budget stretches the other resources' intervals; orders are polled as asked
    assert size["polls"] >= 3  # every account polled in the window, by the worker's count
    assert size["searches"] >= 6  # and by the sandbox's: two polls of each account's orders at least
    assert report["requests_per_min_per_account"] > 0
    assert report["cpu_us_per_resource_poll"] > 0
    assert report["redis_bytes_per_account"] > 0
    assert report["rss_mb"] > 0
    assert report["gap_p99_s"] >= 1.5  # no resource polled more often than asked
    assert report["arrival_p99_s"] > 0  # the order made in the window arrived at the receiver
    assert size["arrived"] == "1/1"
    assert report["cpu_us_per_quiet_resource_poll"] > 0  # the quiet window before the orders
    # each account given 50 products: their snapshots and figures, beside what it held before
    assert report["redis_bytes_per_account_after_bulk_import"] > report["redis_bytes_per_account"] + 50 * 100
    assert report["bulk_import_history_bytes_per_account"] > 50 * 500  # its 50 webhooks' events and deliveries
    assert "| accounts | workers |" in run.stdout  # the table of the size


@pytest.mark.parametrize(
    ("passed_by_size", "max_accounts", "expected"),
    [
        ({500: True}, 4000, 1000),  # growing: double the largest pass
        ({2000: True}, 3000, 3000),  # but never past the bound
        ({500: True, 1000: True, 2000: True, 4000: True}, 4000, None),  # the bound passed: done
        ({500: True, 1000: False}, 4000, 750),  # a failure: bisect between pass and failure
        ({500: True, 1000: False, 750: True}, 4000, 875),
        ({500: True, 1000: False, 750: False}, 4000, 625),
        ({500: True, 540: False}, 4000, None),  # within 10 % of each other: done
        ({500: False}, 4000, 250),  # the first size failed: halve it
        ({1: False}, 4000, None),
    ],
)
def test_find_max_grows_then_bisects(passed_by_size: dict[int, bool], max_accounts: int, expected: int | None) -> None:
    from bench.accounts import next_size

    assert next_size(passed_by_size, max_accounts) == expected
