"""`newswatch sources doctor NAME`: one diagnostic poll of a source, step by step
(crawler/orchestration/doctor.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _load

if TYPE_CHECKING:
    import argparse

MARKS = {"ok": "ok  ", "warn": "WARN", "failed": "FAIL"}


def _sources_doctor(args: argparse.Namespace) -> int:
    from crawler.orchestration.doctor import FAILED, diagnose

    config = _load(args)
    names = [source.name for source in config.sources]
    if args.name not in names:
        print(
            f"newswatch: no source {args.name!r} in the configuration "
            f"(sources: {', '.join(names) or 'none'})"
        )
        return EXIT_CONFIG
    source = config.source(args.name)
    print(f"{source.name}: {source.kind} {source.url}")
    failed = False
    for step in diagnose(source, config):
        print(f"  [{MARKS[step.result]}] {step.name}: {step.detail}")
        failed |= step.result == FAILED
    print("  nothing was stored; `newswatch status` shows the source's health state")
    return EXIT_FAILED if failed else EXIT_OK
