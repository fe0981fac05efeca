"""Starts ``newswatch run`` processes in a fraction of a second, for the crash test.

Importing newswatch (Scrapy, Twisted, SQLAlchemy, pydantic…) takes seconds;
the crash test starts the service fifty times. This process imports it once and
then forks a child per start, the way Android's zygote or multiprocessing's
forkserver do. Each child runs ``crawler.faces.cli.main(["--config", CONFIG, "run"])`` —
exactly what the ``newswatch`` command runs — with its output appended to a log.

Protocol, one JSON document per line on stdin, one answer per line on stdout:
``["spawn", CONFIG, LOG]`` → the child's pid; ``["wait", PID]`` → its raw wait status.
The process is single-threaded when it forks (importing newswatch starts no thread).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import crawler.faces.cli
import crawler.orchestration.service  # the slow imports (Scrapy, SciPy…), done once here


def _child(config: str, log: str) -> None:
    code = 1
    try:
        stdin = os.open(os.devnull, os.O_RDONLY)
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        code = crawler.faces.cli.main(["--config", config, "run"])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = json.loads(line)
        if command == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(*args)
            print(pid, flush=True)
        elif command == "wait":
            _pid, status = os.waitpid(int(args[0]), 0)
            print(status, flush=True)


if __name__ == "__main__":
    main()
