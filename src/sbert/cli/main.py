"""Entry point of the ``sbert`` command: a click group whose subcommands load lazily.

A user's mistake (missing file, bad column, unknown model...) is one line on stderr and exit
code 2; a traceback means a bug in sbert.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import sys
import warnings
from typing import Any

import click

from sbert.runtime import LOG_FORMAT

# subcommand name -> "module:attribute"; modules import only when their command runs
COMMANDS: dict[str, str] = {
    "encode": "sbert.cli.encode:encode",
    "similarity": "sbert.cli.encode:similarity",
    "info": "sbert.cli.encode:info",
    "export": "sbert.cli.export:export",
    "train": "sbert.cli.train:train",
    "eval": "sbert.cli.eval:eval_group",
    "mine": "sbert.cli.mine:mine",
    "index": "sbert.cli.index:index_group",
    "search": "sbert.cli.index:search",
    "cluster": "sbert.cli.cluster:cluster",
    "serve": "sbert.cli.serve:serve",
}


# a reader that stops early (`sbert mine big.txt | head -1`) closes the pipe: sbert then ends
# quietly with the status a shell gives a Unix tool stopped by SIGPIPE (128 + 13), so that
# `set -o pipefail` treats `sbert ... | head` as it treats `cat ... | head`
EXIT_OUTPUT_CLOSED = 141


class _OutputClosed(Exception):
    """The reader of stdout or stderr went away; raised past click, which would exit 1."""


class LazyGroup(click.Group):
    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:  # --help and --version write here
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError as err:
            raise _OutputClosed from err

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as err:
            raise _OutputClosed from err

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="sbert")
def cli(verbose: int) -> None:
    """sbert: Sentence-BERT embeddings: encode, compare, evaluate, train, search."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format=LOG_FORMAT)
    warnings.formatwarning = _one_line_warning


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    """A warning on the command line: its text on one line, not sbert's source file and line
    (which say nothing to the user)."""
    return f"Warning: {message}\n"


# errors of the machine, not of sbert: the disk is full or read-only, a quota is reached
_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user asked for something that cannot be done."""
    from sbert.errors import SbertError

    return (SbertError, FileNotFoundError, IsADirectoryError, PermissionError)


def _undecodable(args: list[str]) -> int | None:
    """The position of the first argument that is not valid UTF-8 (a lone surrogate), if any."""
    for position, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


def main(argv: list[str] | None = None) -> Any:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    bad = _undecodable(sys.argv[1:] if argv is None else argv)
    if bad is not None:
        click.echo(f"Error: command-line argument {bad} is not valid UTF-8; pass text as "
                   "UTF-8, or put it in a UTF-8 file", err=True)
        sys.exit(2)
    try:
        result = cli.main(args=argv, prog_name="sbert", standalone_mode=False)
        _flush_output()  # a reader gone after the last write shows here, not at exit
        return result
    except _OutputClosed:
        _silence_closed_output()
        sys.exit(EXIT_OUTPUT_CLOSED)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as err:
        hint = f" (try '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        click.echo(f"Error: {err.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        err.show()
        sys.exit(2 if err.exit_code in (1, 2) else err.exit_code)
    except user_errors() as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except (NotADirectoryError, FileExistsError) as err:
        # a path goes through a file as if it were a folder, or a folder is where a file is
        where = f" ({err.filename})" if err.filename else ""
        click.echo(f"Error: {os.strerror(err.errno) if err.errno else err}{where}; a folder on "
                   "this path is a file: choose another path", err=True)
        sys.exit(2)
    except OSError as err:
        if err.errno not in _ENVIRONMENT_ERRNOS:
            raise  # anything else is a bug and shows as one
        where = f" ({err.filename})" if err.filename else ""
        click.echo(f"Error: {os.strerror(err.errno)}{where}; free space or choose another "
                   "place and run the command again", err=True)
        sys.exit(2)


def _flush_output() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError as err:
        raise _OutputClosed from err


def _silence_closed_output() -> None:
    """Point a closed stdout or stderr at /dev/null: the interpreter flushes both at exit,
    and the text still in a closed one's buffer would fail again there ("Exception ignored
    ... BrokenPipeError")."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            with contextlib.suppress(OSError, ValueError):  # no descriptor: none to flush
                fd = stream.fileno()
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
        except (OSError, ValueError):  # closed, or not a file: nothing left to flush
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
