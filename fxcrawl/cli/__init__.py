"""The fxcrawl command (click): argument parsing and printing only, one module per command group.

``main(argv)`` returns the exit code (0 done, 1 failed, 2 bad arguments, 3 skipped) rather than
exiting, so tests and scripts call it in-process; ``fxcrawl.cli:main`` is the console script.
Only click is imported here: each command imports the store, Scrapy or Twisted when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import click

from fxcrawl.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, CommandError, UsageError, usage_message

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SKIPPED",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
    "build_parser",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    from fxcrawl.cli.app import fxcrawl

    return fxcrawl.main(None if argv is None else list(argv), "fxcrawl", standalone_mode=False)


class ArgumentsParser:
    """The old ``build_parser()`` seam: ``parse_args(argv)`` gives the parameters the command would
    run with, as a namespace (its defaults included), without running it."""

    def parse_args(self, argv: Sequence[str]) -> argparse.Namespace:
        from fxcrawl.cli.app import fxcrawl

        command: click.Command = fxcrawl
        path, words = ["fxcrawl"], list(argv)
        while isinstance(command, click.Group) and words and words[0] in command.commands:
            path.append(words[0])
            command = command.commands[words.pop(0)]
        try:
            ctx = command.make_context(" ".join(path), words)
        except click.UsageError as exc:
            print(usage_message(exc), file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        return argparse.Namespace(command=path[1] if len(path) > 1 else None, **ctx.params)


def build_parser() -> ArgumentsParser:
    return ArgumentsParser()
