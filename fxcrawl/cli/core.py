"""The click classes every fxcrawl command is built from: they turn a command's failures into one
line and an exit code (the contract scripts rely on) instead of click's defaults or a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NoReturn, overload

import click

from fxcrawl.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError, UsageError, usage_message


class Group(click.Group):
    """A command group that lists its commands in the order they were added (related ones together)
    and refuses a missing or unknown command as argparse did (``argument ACTION: invalid choice``)."""

    def __init__(self, *args: Any, choice: str = "ACTION", **kwargs: Any) -> None:
        kwargs.setdefault("subcommand_metavar", f"{choice} [ARGS]...")
        kwargs.setdefault("no_args_is_help", False)
        super().__init__(*args, **kwargs)
        self.choice = choice

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:
            raise click.UsageError(f"the following arguments are required: {self.choice}", ctx)
        with _in_context(ctx):
            return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.commands:
            choices = ", ".join(map(repr, self.commands))
            raise click.UsageError(f"argument {self.choice}: invalid choice: {name!r} (choose from {choices})", ctx)
        return super().resolve_command(ctx, args)


class Program(Group):
    """The `fxcrawl` group itself: its usage errors are printed in fxcrawl's one line (not click's usage
    block) whether it runs as the console script, under click's CliRunner, or through ``main(argv)``."""

    @overload
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: Literal[True] = True,
        **extra: Any,
    ) -> NoReturn: ...

    @overload
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = ...,
        **extra: Any,
    ) -> int: ...

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        """The exit code (exits with it in standalone mode, as a console script does)."""
        try:
            code = super().main(args, prog_name or self.name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            print(usage_message(exc), file=sys.stderr)
            code = EXIT_USAGE
        except click.Abort as exc:  # click turns Ctrl-C into Abort outside standalone mode: give it back
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise exc.__context__ from None
            raise
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


class Command(click.Command):
    """A command whose handler returns its exit code. A bad --db is refused before the handler runs;
    UsageError exits 2, CommandError and database failures exit 1, each in one line on stderr."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Left-over words are collected rather than refused by click, so they are refused in argparse's words.
        kwargs.setdefault("context_settings", {}).setdefault("allow_extra_args", True)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _in_context(ctx):
            return super().parse_args(ctx, self.unabbreviated(ctx, args))

    def unabbreviated(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Long options written as a unique prefix (``--max`` for ``--max-pages``), as argparse took them."""
        options = [param for param in self.get_params(ctx) if isinstance(param, click.Option)]
        takes_value = {name for param in options if not param.is_flag for name in param.opts}
        names = sorted(name for param in options for name in param.opts if name.startswith("--"))
        out: list[str] = []
        words = iter(args)
        for word in words:
            if word == "--":
                out += [word, *words]
                break
            name, equals, value = word.partition("=")
            if name.startswith("--") and name not in names:
                matches = [option for option in names if option.startswith(name)]
                if len(matches) > 1:
                    raise click.UsageError(f"ambiguous option: {name} could match {', '.join(matches)}", ctx)
                if matches:
                    name = matches[0]
                    word = name + equals + value
            out.append(word)
            following = next(words, None) if name in takes_value and not equals else None
            if following is not None:  # the option's value: a word of its own, whatever it looks like
                out.append(following)
        return out

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.args:
            raise click.UsageError(f"unrecognized arguments: {' '.join(ctx.args)}", ctx)
        db = ctx.params.get("db")
        try:
            if db is not None:  # a --db that is no URL, or no database we write: refused first
                _check_database_url(db)
            return super().invoke(ctx)
        except UsageError as exc:
            print(f"fxcrawl: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except CommandError as exc:
            print(f"fxcrawl: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except BrokenPipeError:  # `fxcrawl … | head`: the reader has all it wanted
            return 0
        except Exception as exc:
            code = _database_failure(exc, db)
            if code is None:
                raise
            return code


@contextmanager
def _in_context(ctx: click.Context) -> Iterator[None]:
    """Click's parser raises some usage errors without their command (an option missing its value):
    give them the command, so the refusal names its --help."""
    try:
        yield
    except click.UsageError as exc:
        if exc.ctx is None:
            exc.ctx = ctx
        raise


def _check_database_url(db: str) -> None:
    from storage.db import DatabaseURLError, parse_database_url

    try:
        parse_database_url(db)
    except DatabaseURLError as exc:
        raise UsageError(str(exc)) from None


def _database_failure(exc: Exception, db: str | None) -> int | None:
    """A missing, read-only or failing database: one line, exit 1. None for anything else (a bug)."""
    if "storage.db" not in sys.modules:
        return None  # nothing touched a database: not a database failure
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import DatabaseMissing, DatabaseUnwritable, redact

    if isinstance(exc, DatabaseMissing | DatabaseUnwritable):
        print(f"fxcrawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, SQLAlchemyError):
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"fxcrawl: database error ({redact(db or '')}): {detail}", file=sys.stderr)
        return EXIT_FAILED
    return None
