"""Exit codes and the one-line refusals every command shares, so a script can tell why fxcrawl stopped.

Click's own usage errors are reworded as argparse worded them (``argument --limit: must be at least
1: '0'``): the CLI moved to click, and what it prints when refusing bad arguments did not change.
"""

from __future__ import annotations

import click

#: Exit codes: 0 done; 1 the work failed (or the run is unhealthy); 2 bad arguments, refused
#: before any work; 3 skipped: the job (or, without --job, the spider) is running elsewhere.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit code 2."""


class CommandError(Exception):
    """The command could not do its work (database unreachable, wrong schema): one line, exit 1."""


def param_hint(param: click.Parameter | None) -> str:
    """How argparse named a parameter in its errors: ``-s/--set``, ``--limit``, or a positional's metavar."""
    if param is None:
        return "argument"
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.metavar or (param.name or "argument")


def usage_message(exc: click.UsageError) -> str:
    """The refusal as one line, in argparse's words, ending with where to read the command's help."""
    ctx = exc.ctx
    if isinstance(exc, click.NoSuchOption):
        message = f"unrecognized arguments: {exc.option_name}"
    elif isinstance(exc, click.MissingParameter):
        message = f"the following arguments are required: {param_hint(exc.param)}"
    elif isinstance(exc, click.BadParameter):
        message = f"argument {param_hint(exc.param)}: {exc.message}"
    elif isinstance(exc, click.BadOptionUsage):
        option = _option_named(ctx, exc.option_name)
        hint = param_hint(option) if option is not None else exc.option_name
        detail = "expected one argument" if "requires an argument" in exc.message else exc.message
        message = f"argument {hint}: {detail}"
    else:
        message = exc.message
    message = " ".join(message.split())  # one line, whatever click put in it
    where = ctx.command_path if ctx is not None else "fxcrawl"
    return f"fxcrawl: error: {message} (see {where} --help)"


def _option_named(ctx: click.Context | None, name: str) -> click.Parameter | None:
    if ctx is None:
        return None
    return next((param for param in ctx.command.params if name in getattr(param, "opts", ())), None)
