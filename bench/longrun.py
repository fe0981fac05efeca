"""A long run: 300 scheduled polls in one `newswatch run` process, memory and files watched.

A service people run for months must not grow. This starts the real service
against the fixture news site (tests/newssite.py) with every source polled each
second, and samples the process's resident memory and open file descriptors as
the polls go by. Between the first and the last sample neither may keep growing.

    python bench/longrun.py [--polls 300] [--sources 3]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import NEWSWATCH, site_config, write_config  # noqa: E402
from newssite import NewsSite  # noqa: E402


def process_tree(pid: int) -> list[int]:
    """The pid and its descendants (the service and its worker processes)."""
    children = {pid}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            children.add(int(status.parent.name))
    return sorted(children)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--sources", type=int, default=3)
    args = parser.parse_args()

    site = NewsSite().start()
    folder = Path(tempfile.mkdtemp(prefix="newswatch-longrun-"))
    feeds = ["world/rss.xml", "tech/atom.xml", "gulf/rss.xml"]
    settings = site_config(
        site,
        folder,
        workers=1,
        sources=[
            {"name": f"source-{n}", "feed": site.url(feeds[n % len(feeds)]), "every": "1s"}
            for n in range(args.sources)
        ],
    )
    # Alternate the validators so some polls are 304s and some are full parses.
    config = write_config(folder, **settings)
    service = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: list[tuple[int, float, int, float]] = []
    started = time.monotonic()
    try:
        next_sample = 0
        while True:
            polls = sum(
                1
                for seen in site.requests
                if not seen.path.startswith(("/articles/", "/robots.txt"))
            )
            if polls >= next_sample:
                tree = process_tree(service.pid)
                samples.append(
                    (
                        polls,
                        sum(rss_mb(p) for p in tree),
                        open_fds(service.pid),
                        time.monotonic() - started,
                    )
                )
                next_sample += max(args.polls // 10, 1)
            if polls >= args.polls:
                break
            if service.poll() is not None:
                raise SystemExit("the service stopped by itself")
            site.validators = polls % 20 < 10
            time.sleep(0.2)
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
        site.stop()
    print(
        f"{args.polls} polls of {args.sources} sources in {samples[-1][3]:.0f}s, exit code {code}\n"
    )
    print("| polls | RSS of service + workers (MB) | open fds | seconds |")
    print("| --- | --- | --- | --- |")
    for polls, rss, fds, seconds in samples:
        print(f"| {polls} | {rss:.1f} | {fds} | {seconds:.0f} |")
    settled = samples[len(samples) // 3]  # after start-up (imports, pools, first crawl)
    growth = samples[-1][1] - settled[1]
    print(f"\nRSS growth after warm-up: {growth:+.1f} MB; fds {settled[2]} -> {samples[-1][2]}")


if __name__ == "__main__":
    main()
