"""Sampling a benchmark's worker with py-spy, and the summary of where its time went.

    .venv/bin/python bench/throughput.py --profile /tmp/worker.txt   # records the worker while it delivers

The summary lists the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive); ``EpollSelector.select`` is time spent waiting for I/O.
"""

import contextlib
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sampling(pid: int, path: Path, *, rate_hz: int = 250) -> Iterator[None]:
    """py-spy recording ``pid`` into ``path`` (folded stacks) while the block runs."""
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
    args = [spy, "record", "--pid", str(pid), "--rate", str(rate_hz), "--format", "raw", "-o", str(path)]
    recorder = subprocess.Popen([*args, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        yield
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes what it has
        recorder.wait(30)


def summary(path: Path, top: int = 25) -> str:
    """The functions holding the most samples, by self and by inclusive share."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        own[frames[-1]] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    total = sum(own.values()) or 1
    lines = [f"{total} samples"]
    lines += [f"{100 * n / total:5.1f}% self  {f[:130]}" for f, n in own.most_common(top)]
    lines += [f"{100 * n / total:5.1f}% incl  {f[:130]}" for f, n in anywhere.most_common(top * 2)]
    return "\n".join(lines)
