"""Adds ``tsm serve`` to the command line."""

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
        # on SIGTERM or Ctrl-C uvicorn stops taking requests, then the app's shutdown marks
        # the queued and running training sets interrupted (tsm_web.jobs.Runner.shutdown)
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
