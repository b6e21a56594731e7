"""The fault suite's fixtures and its summary table.

Each case gets a :class:`~tests.faults.ledger.Ledger`; when the case ends its tally joins the session's, and
the table is printed at the end of the run (``pytest_terminal_summary``), one line a case, passed or not.

Cases marked ``slow_fault`` run on demand only: ``make faults`` (``-m "slow_fault or not slow_fault"``), or any
``-m`` expression naming ``slow_fault``. Otherwise they are skipped, so ``make test`` runs the fast ones.
"""

import time
from collections.abc import Generator, Iterator

import pytest

from tests.faults.ledger import Ledger, Tally, format_table

TALLIES = pytest.StashKey[list[Tally]]()
REPORT = pytest.StashKey[pytest.TestReport]()
STARTED = pytest.StashKey[float]()
SUITE_BUDGET_S = 15 * 60  # every case is bounded too; this bounds the whole run, should many hit their bounds


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLIES] = []
    config.stash[STARTED] = time.monotonic()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if time.monotonic() - item.config.stash[STARTED] > SUITE_BUDGET_S:
        pytest.skip(f"the fault suite is past its {SUITE_BUDGET_S // 60} minutes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow_fault" in (config.option.markexpr or ""):
        return
    on_demand = pytest.mark.skip(reason="a long fault case: run it with `make faults`")
    for item in items:
        if item.get_closest_marker("slow_fault") is not None:
            item.add_marker(on_demand)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[REPORT] = report
    return report


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The case's ledger; its tally goes into the summary table when the case ends."""
    family = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").removesuffix("_faults")
    case = Ledger(f"{family}: {request.node.name.removeprefix('test_')}")
    yield case
    tally = case.tally()
    report = request.node.stash.get(REPORT, None)
    if report is None:
        tally.outcome = "error"
    elif hasattr(report, "wasxfail") and report.skipped:
        tally.outcome = "xfail: known bug"
    else:
        tally.outcome = "ok" if report.passed else "FAILED"
    request.config.stash[TALLIES].append(tally)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    tallies = config.stash.get(TALLIES, [])
    if not tallies:
        return
    terminalreporter.section("fault suite")
    for line in format_table(tallies):
        terminalreporter.write_line(line)
    total = sum(t.seconds for t in tallies)
    lost = sum(t.lost for t in tallies if not t.outcome.startswith("xfail"))
    known = sum(t.lost for t in tallies if t.outcome.startswith("xfail"))
    terminalreporter.write_line(
        f"{len(tallies)} cases in {total:.0f} s; lost {lost}"
        + (f" (and {known} in cases of known bugs)" if known else "")
    )
