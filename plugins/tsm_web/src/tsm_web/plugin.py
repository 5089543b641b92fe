"""Adds ``tsm serve`` and ``tsm users`` (the web service's users and their tokens) to the command line."""

from __future__ import annotations

import click

from tsm_core import hookimpl


@hookimpl
def tsm_register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option("--runs", default=2, show_default=True, type=click.IntRange(1), help="Training sets built at once.")
    @click.option("--max-upload-mb", default=200, show_default=True, type=click.IntRange(1),
                  envvar="TSM_MAX_UPLOAD_MB", help="Largest redshift catalog upload (or $TSM_MAX_UPLOAD_MB).")
    def serve(host: str, port: int, runs: int, max_upload_mb: int) -> None:
        """Serve the web form and the HTTP API (registry under $TSM_HOME; token: $TSM_API_TOKEN)."""
        import uvicorn

        from tsm_web.app import create_app

        app = create_app(max_runs=runs, max_upload_bytes=max_upload_mb * 2**20)
        click.echo(f"Training Set Maker on http://{host}:{port}/  (API description: /docs)")
        click.echo(f"Photo-z Server API for the pzserver client: http://{host}:{port}/api/  (tokens: tsm users add)")
        uvicorn.run(app, host=host, port=port, log_level="warning")

    @cli.group()
    def users() -> None:
        """Users of `tsm serve` and their API tokens (Authorization: Token <token>)."""

    @users.command("add")
    @click.argument("name")
    def users_add(name: str) -> None:
        """Create user NAME and print their new token (shown once; only its hash is kept)."""
        user, token = _registry().add_user(name)
        click.echo(f"user {user.name!r} (id {user.id}) created; token (keep it, it is not shown again):")
        click.echo(token)

    @users.command("list")
    def users_list() -> None:
        """List the users."""
        for user in _registry().users():
            click.echo(f"{user.id}\t{user.name}\t{user.created_at}")

    @users.command("remove")
    @click.argument("name")
    def users_remove(name: str) -> None:
        """Remove user NAME: their token stops working (their products stay)."""
        _registry().remove_user(name)
        click.echo(f"user {name!r} removed")


def _registry():  # noqa: ANN202 - imported on use, like the rest of the command line
    from tsm_core.config import tsm_home
    from tsm_core.registry import Registry

    return Registry.at_home(tsm_home())
