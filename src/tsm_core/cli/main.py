"""The ``tsm`` command: its group (options, logging, warnings), the one-line display of
errors, and :func:`main`, the console script.

The commands live in modules by concern, each adding its own to the group:
:mod:`~tsm_core.cli.run` (run, sample, demo), :mod:`~tsm_core.cli.catalogs` (catalogs,
plugins, formats, dereddeners, dustmaps, import), :mod:`~tsm_core.cli.redshift` and
:mod:`~tsm_core.cli.products` (products, report); installed plugins add theirs through
the ``tsm_register_commands`` hook (:func:`get_cli`).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from tsm_core import plugins
from tsm_core.cli import catalogs, products, redshift, run
from tsm_core.cli.leave import exit_code, fast_exit_allowed, leave
from tsm_core.cli.signals import STOPPED
from tsm_core.compute import PREFETCH_THREAD
from tsm_core.errors import RunCancelled, TSMError, one_line

#: the group's options, also accepted after the sub-command (`tsm run x.yaml -v`)
GLOBAL_FLAGS = frozenset({"--debug", "--verbose", "--quiet", "-q", "-v", "-vv", "-vvv"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """``args`` with the group's flags found after the sub-command moved before it (up to a
    ``--``, after which every token is an argument)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]


def usage_line(exc: click.UsageError) -> str:
    """A click usage error as one line: the message, the usage and where the help is."""
    ctx = exc.ctx
    if ctx is None:
        return f"Error: {exc.format_message()}"
    usage = " ".join(ctx.get_usage().split())
    return f"Error: {exc.format_message()} {usage} (`{ctx.command_path} --help` for more)"


class TSMGroup(click.Group):
    """Turns expected errors into one line on stderr and a non-zero exit; accepts its own
    options after the sub-command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args) if ctx.parent is None else args)

    def main(self, args: Any = None, prog_name: str | None = None, *rest: Any, **extra: Any) -> Any:
        """click's ``main``, with usage errors on one line."""
        if extra.get("standalone_mode", True) is False:
            return super().main(args, prog_name, *rest, **extra)
        try:
            result = super().main(args, prog_name, *rest, **(extra | {"standalone_mode": False}))
        except click.UsageError as exc:
            click.echo(usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if type(result) is int else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
            if ctx.obj and ctx.obj.get("debug"):
                raise
            # the full text (a FITSIO dump, an HDF5 stack) goes to the log; the user gets one line
            logging.getLogger("tsm_core").debug("full error:", exc_info=exc)
            kind = "" if isinstance(exc, TSMError) else f"{type(exc).__name__}: "
            click.echo(f"Error: {kind}{one_line(exc)}", err=True)
            if not isinstance(exc, TSMError):
                click.echo("(run `tsm --debug ...` for the traceback)", err=True)
            code = STOPPED.get(getattr(exc, "signal", None), 1) if isinstance(exc, RunCancelled) else 1
            ctx.exit(code)


def _guard_warning_display() -> None:
    """Drop the known noise (:data:`tsm_core.compute.noise.KNOWN_NOISE`) where warnings are shown.

    The filters alone are not enough when runs compute in threads: libraries wrap code
    in ``warnings.catch_warnings()``, which is not thread-safe, and an interleaving can
    leave a ``simplefilter("always")`` of one thread in force for good; eight runs at
    once then printed thousands of Pandas4Warning lines each. The CLI owns its process,
    so it also checks at display time."""
    import re
    import warnings

    from tsm_core.compute.noise import KNOWN_NOISE

    rules = [(category, re.compile(message), re.compile(module)) for category, message, module, _ in KNOWN_NOISE]
    shown = warnings.showwarning
    if getattr(shown, "tsm_guard", False):
        return

    def showwarning(
        message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None
    ) -> None:
        module = _module_of(filename)
        text = str(message)
        if any(issubclass(category, c) and m.match(text) and mod.match(module) for c, m, mod in rules):
            return
        shown(message, category, filename, lineno, file, line)

    showwarning.tsm_guard = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _module_of(filename: str) -> str:
    """``.../site-packages/lsdb/catalog/x.py`` -> ``lsdb.catalog.x``."""
    parts = Path(filename).with_suffix("").parts
    for marker in ("site-packages", "dist-packages", "src"):
        if marker in parts:
            parts = parts[len(parts) - parts[::-1].index(marker) :]
            break
    return ".".join(parts)


def _setup_logging(verbosity: int) -> None:
    """Send the log lines of the core and of every installed plugin to stderr."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tsm: %(message)s"))
    packages = {"tsm_core"} | {
        (getattr(p, "__name__", None) or type(p).__module__).split(".")[0]
        for p in plugins.get_plugin_manager().get_plugins()
    }
    for failure in plugins.load_failures():
        click.echo(
            f"tsm: warning: plugin {failure.name!r} ({failure.distribution}) is left out: {failure.error}", err=True
        )
    for name in packages:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


@click.group(cls=TSMGroup)
@click.option("--debug", is_flag=True, help="Show the full traceback of errors.")
@click.option("-v", "--verbose", count=True, help="More log lines.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="tsm-core")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """Training Set Maker: photo-z training sets from spectroscopic redshifts x Rubin Objects."""
    from tsm_core.compute.noise import quiet_known_warnings

    quiet_known_warnings()
    _guard_warning_display()
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _setup_logging(-1 if quiet else verbose)


for _commands in (run, catalogs, redshift, products):
    _commands.register(cli)


@functools.cache
def get_cli() -> click.Group:
    """The ``tsm`` command with the commands of installed plugins added (once)."""
    plugins.get_plugin_manager().hook.tsm_register_commands(cli=cli)
    return cli


#: Arrow's default mimalloc pool keeps the memory that finished partitions freed, so the
#: peak memory of a run grew with the number of partitions read (941 MB against 607 MB
#: with jemalloc for 20 million objects; 534 MB for 1 million). Arrow reads this variable
#: once, when pyarrow is first imported; a pool the user chose is left alone.
ARROW_POOL = ("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def main() -> None:
    """Entry point of the ``tsm`` console script.

    The process ends through :func:`~tsm_core.cli.leave.leave`: threads finished, atexit
    handlers run, output flushed, and no teardown of the interpreter's objects, which took
    longer than a small run itself. A run that stopped on an error (a full disk, a signal)
    may leave the batch it was computing ahead in a daemon thread inside native code (Arrow,
    HDF5); the interpreter's shutdown would then race that thread (a hang, or an abort from
    C++). Its files are cleaned up already, so the process leaves at once in that case,
    waiting for nothing."""
    os.environ.setdefault(*ARROW_POOL)
    try:
        get_cli()(obj={})
    except SystemExit as exc:
        prefetching = any(t.name == PREFETCH_THREAD and t.is_alive() for t in threading.enumerate())
        if not (prefetching or fast_exit_allowed()):
            raise
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        leave(exit_code(exc.code), wait=not prefetching)
