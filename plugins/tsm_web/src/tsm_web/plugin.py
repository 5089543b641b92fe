"""Adds ``tsm serve`` and ``tsm users`` (the web service's users and their tokens) to the command line."""

from __future__ import annotations

import gc
import logging
import threading
from typing import TYPE_CHECKING

import click

from tsm_core import hookimpl

if TYPE_CHECKING:
    from tsm_web.jobs import Runner

log = logging.getLogger(__name__)


@hookimpl
def tsm_register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, exists=True),
        help="The operator's settings (YAML): release_paths, dust_maps_dir, products_dir, scheduler, "
        "n_workers, memory_limit, token, max_runs, max_upload_mb, max_upload_decompressed_mb, "
        "max_upload_rows, max_queued_per_user, allowed_hosts.",
    )
    @click.option("--runs", "max_runs", type=click.IntRange(1), help="Training sets built at once (default 2).")
    @click.option(
        "--max-upload-mb",
        type=click.FloatRange(min=0, min_open=True),
        help="Largest redshift catalog upload (default 200, or $TSM_MAX_UPLOAD_MB).",
    )
    @click.option(
        "--max-upload-decompressed-mb",
        type=click.FloatRange(min=0, min_open=True),
        help="Largest upload once decompressed and decoded (default 2000, or $TSM_MAX_UPLOAD_DECOMPRESSED_MB).",
    )
    @click.option(
        "--max-upload-rows",
        type=click.IntRange(1),
        help="Most rows of an uploaded catalog (default 10000000, or $TSM_MAX_UPLOAD_ROWS).",
    )
    @click.option(
        "--release-path",
        "release_paths",
        multiple=True,
        metavar="RELEASE=PATH",
        help="The object catalog a release uses, e.g. dp1=/rubin/lsdb_data/dp1/object_collection.",
    )
    @click.option("--dust-maps-dir", help="Folder of the dust maps runs may use.")
    @click.option("--products-dir", help="Where training sets are written (default $TSM_HOME/products).")
    @click.option("--scheduler", help="compute.scheduler of every run: threads, processes or tcp://host:port.")
    @click.option("--n-workers", type=click.IntRange(1, 256), help="compute.n_workers of every run.")
    @click.option(
        "--allowed-hosts",
        help="Comma-separated names (name or name:port; * for any) a request's Host "
        "may give besides the bound address's own (or $TSM_ALLOWED_HOSTS).",
    )
    def serve(host: str, port: int, config_file: str | None, release_paths: tuple[str, ...], **options: object) -> None:
        """Serve the web form and the HTTP API (registry under $TSM_HOME; token: $TSM_API_TOKEN).

        Clients choose releases and science options only: every location and compute
        resource of a run is the operator's (these options, or --config).
        """
        import uvicorn

        from tsm_web.app import create_app
        from tsm_web.security import default_allowed_hosts
        from tsm_web.settings import ServerSettings

        paths = {}
        for item in release_paths:
            release, sep, path = item.partition("=")
            if not sep or not release or not path:
                raise click.BadParameter(f"{item!r} is not RELEASE=PATH", param_hint="--release-path")
            paths[release.strip()] = path.strip()
        settings = ServerSettings.load(config_file, **options)
        if paths:
            settings = settings.model_copy(update={"release_paths": settings.release_paths | paths})
        # the bound address's names are always this server's; the operator's names come on top
        hosts = [*default_allowed_hosts(host, port), *(settings.allowed_hosts or [])]
        settings = settings.model_copy(update={"allowed_hosts": hosts})
        app = create_app(settings)
        _freeze_when_warm(app.state.runner)
        click.echo(f"Training Set Maker on http://{host}:{port}/  (API description: /docs)")
        click.echo(f"Photo-z Server API for the pzserver client: http://{host}:{port}/api/  (tokens: tsm users add)")
        # on SIGTERM or Ctrl-C uvicorn stops taking requests, then the app's shutdown marks
        # the queued and running training sets interrupted (tsm_web.jobs.Runner.shutdown)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)

    @cli.group()
    def users() -> None:
        """Users of `tsm serve` and their API tokens (Authorization: Token <token>)."""

    @users.command("add")
    @click.argument("name")
    def users_add(name: str) -> None:
        """Create user NAME and print their new token (shown once; only its hash is kept)."""
        user, token = _users().add(name)
        click.echo(f"user {user.name!r} (id {user.id}) created; token (keep it, it is not shown again):")
        click.echo(token)

    @users.command("list")
    def users_list() -> None:
        """List the users."""
        for user in _users().all():
            click.echo(f"{user.id}\t{user.name}\t{user.created_at}")

    @users.command("remove")
    @click.argument("name")
    def users_remove(name: str) -> None:
        """Remove user NAME: their token stops working (their products stay)."""
        _users().remove(name)
        click.echo(f"user {name!r} removed")


def _users():  # noqa: ANN202 - imported on use, like the rest of the command line
    from tsm_core.config import tsm_home
    from tsm_core.products.registry import Registry
    from tsm_web.users import Users

    return Users(Registry.at_home(tsm_home()))


def _freeze_when_warm(runner: Runner) -> None:
    """In the server's own process only: once the run path is imported, move the objects
    alive then (LSDB's stack and the app, some 300,000) out of the garbage collector's
    generations (``gc.freeze``), so that the full collections during each training set do
    not scan them again (about 0.4 s each on a loaded machine). Not while a training set is
    queued or running (one submitted during the warm-up): its objects would never be collected."""

    def work() -> None:
        if runner.warming is not None:
            runner.warming.join()
        if runner.busy():
            log.info("a training set started during the warm-up: the startup objects are not frozen")
            return
        gc.collect()
        gc.freeze()

    threading.Thread(target=work, name="tsm-gc-freeze", daemon=True).start()
