"""What the idle service holds: PSS of `newswatch demo`'s process tree, per process.

    python bench/idle_memory.py [--seconds 200] [--keep]

Runs ``newswatch demo`` (the real service against the bundled demo site, served on
loopback: no internet) on a fresh folder. Its first polls store the site's five
articles within seconds; after that every poll finds the feeds unchanged and the
service is idle but for its timers (polls every 10 s, a digest every 20 s). The
tree's PSS is sampled every ``SAMPLE_SECONDS`` (the whole tree, looked up again
each time: workers come and go) and, after ``--seconds``, once more per process:
the service process, the CPU pool's forkserver, each extraction worker,
multiprocessing's resource tracker. The idle figure is the largest tree PSS of
the last ``IDLE_WINDOW`` seconds. ``--seconds`` must leave that window after
``workers_idle_close`` (default 2 min after the last page) for the workers to have
been let go in it.

PSS (proportional set size) counts a page shared by n processes as 1/n in each:
the sum over the tree is what it takes from the machine. RSS beside it counts
shared pages in every process that maps them.

Promise (issue 22): the idle tree holds at most 150 MB of PSS.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import PACKAGES, ROOT, _descendants, _pss, _rss, child_environment

TARGET_IDLE_PSS_MB = 150.0
SAMPLE_SECONDS = 2.0
# The idle figure is the largest tree PSS sampled over the run's last this many
# seconds: the service's polls and digests come and go within it.
IDLE_WINDOW = 40.0
MB = 2**20
_STORED = re.compile(r"\b(\d+) stored\b")


@dataclass
class ProcessMemory:
    pid: int
    role: str
    rss: int
    pss: int
    private: int


def _private(pid: int) -> int:
    """Private_Clean + Private_Dirty of a process (pages no other process maps)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
    except OSError:
        pass
    return total


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def tree_memory(root: int) -> list[ProcessMemory]:
    """Each process of the tree under ``root``, named by its part in the service."""
    pids = _descendants(root)
    forkservers = {
        pid
        for pid in pids
        if _parent(pid) == root and "multiprocessing.forkserver" in _command_line(pid)
    }
    found = []
    workers = 0
    for pid in pids:
        command = _command_line(pid)
        if pid == root:
            role = "service (reactor, database thread, web UI)"
        elif pid in forkservers:
            role = "CPU pool forkserver (preloaded extraction stack)"
        elif _parent(pid) in forkservers:
            workers += 1
            role = f"extraction worker {workers}"
        elif "resource_tracker" in command:
            role = "multiprocessing's resource tracker"
        else:
            role = command[:60] or "?"
        found.append(ProcessMemory(pid, role, _rss(pid), _pss(pid), _private(pid)))
    return [p for p in found if p.rss or p.pss]


def render(processes: list[ProcessMemory]) -> str:
    lines = [
        "| process | RSS MB | PSS MB | of which private |",
        "| --- | ---: | ---: | ---: |",
    ]
    for p in processes:
        lines.append(f"| {p.role} | {p.rss / MB:.0f} | {p.pss / MB:.0f} | {p.private / MB:.0f} |")
    rss = sum(p.rss for p in processes)
    pss = sum(p.pss for p in processes)
    lines.append(
        f"| **tree** ({len(processes)} processes) | {rss / MB:.0f} | **{pss / MB:.0f}** | |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=200.0,
        help="how long the demo runs before the idle sample (default 200)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the demo folder (log, database)")
    args = parser.parse_args()

    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="newswatch-idle-"))
    log = folder / "demo.log"
    command = [
        sys.executable,
        "-m",
        "crawler.faces.cli",
        "demo",
        "--folder",
        str(folder / "demo"),
        "--web-port",
        "0",
        # A safety net: the demo stops by itself if this script dies.
        "--duration",
        str(args.seconds + 60),
    ]
    started = time.monotonic()
    timeline: list[tuple[float, int, int]] = []  # (seconds, processes, tree PSS)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=child_environment(), cwd=folder
        )
        try:
            while (elapsed := time.monotonic() - started) < args.seconds:
                if process.poll() is not None:
                    print(f"newswatch demo exited early ({process.returncode}); see {log}")
                    return 1
                pids = _descendants(process.pid)
                timeline.append((elapsed, len(pids), sum(_pss(pid) for pid in pids)))
                time.sleep(min(SAMPLE_SECONDS, max(0.0, args.seconds - elapsed)))
            idle = tree_memory(process.pid)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    for pid in _descendants(process.pid):
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    process.wait()
    text = log.read_text("utf-8", "replace")
    stored = sum(int(n) for n in _STORED.findall(text))
    unchanged = text.count(": unchanged in ")
    window = [pss for t, _, pss in timeline if t >= args.seconds - IDLE_WINDOW]
    window.append(sum(p.pss for p in idle))
    idle_pss = max(window) / MB
    peak = max(timeline, key=lambda sample: sample[2])

    print(
        f"\nnewswatch idle memory: `newswatch demo` (2 sources every 10 s, 3 rules, a digest "
        f"every 20 s, workers: 1), {os.cpu_count()} cores; sampled after {args.seconds:.0f} s: "
        f"{stored} articles stored, then {unchanged} polls that found nothing new\n"
    )
    print(render(idle))
    print(
        "\ntree PSS over the run, MB: "
        + ", ".join(f"{t:.0f} s {pss / MB:.0f} ({n})" for t, n, pss in timeline[::8])
        + f"  (seconds, PSS, processes); peak {peak[2] / MB:.0f} MB at {peak[0]:.0f} s; "
        f"over the last {IDLE_WINDOW:.0f} s: {min(window) / MB:.0f}-{idle_pss:.0f} MB"
    )
    print("\ntargets:")
    print(
        f"- {'met' if idle_pss <= TARGET_IDLE_PSS_MB else 'MISSED'}: idle PSS = {idle_pss:.0f} MB "
        f"summed over the process tree, the most over the last {IDLE_WINDOW:.0f} s "
        f"(target ≤ {TARGET_IDLE_PSS_MB:.0f} MB)"
    )
    print(
        f"- {'met' if stored >= 5 else 'MISSED'}: the demo stored its articles before going "
        f"idle ({stored} stored, target 5)"
    )
    if args.keep:
        print(f"kept {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
