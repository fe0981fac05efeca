"""The ``newswatch`` command: a thin layer that turns domain errors into clean exits.

A package: the parser and ``main`` (app), shared helpers (common) and one module per
command group (service_commands, inspect_commands, admin_commands).

Layer 5, faces (part of crawler.faces). May import: every layer below.
"""

from crawler.faces.cli.app import JsonLogFormatter, main
from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, logger

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "JsonLogFormatter", "logger", "main"]
