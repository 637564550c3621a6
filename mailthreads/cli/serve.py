"""``serve``: the SMTP listener."""

from __future__ import annotations

from pathlib import Path

import click

from .app import App


@click.command()
@click.option("--host", help="Address to listen on. Default: [listener] host (127.0.0.1)")
@click.option("--port", type=click.IntRange(0, 65535),
              help="TCP port. Default: [listener] port (8025); 0 picks a free one")
@click.option("-v", "--verbose", count=True,
              help="More logging: -v for sessions, -vv for the whole SMTP dialogue")
@click.pass_obj
def serve(app: App, host: str | None, port: int | None, verbose: int) -> None:
    """Receive replies by SMTP, behind your MX or a Postfix transport.

    Accepts mail for the reply addresses only (others get 550), answers 250 once a message is
    safely on disk, and files it in its thread right after, in a second process. Logs a line
    per message to standard error. Stops cleanly on SIGTERM or Ctrl-C.

    Exit status: 0 when stopped, 1 for a problem to fix (configuration, database, address),
    75 when the port is in use (try again later).

    \b
    Examples:
        mailthreads serve
        mailthreads serve --host 0.0.0.0 --port 25
        mailthreads -c /etc/mailthreads/config.toml serve -v
    """
    from ..transport.smtp.log import configure
    from ..transport.smtp.server import Options
    from ..transport.smtp.server import serve as run

    config = app.config
    options = Options(
        database_path=Path(app.database_path),
        config=config,
        host=host or config.listener.host,
        port=config.listener.port if port is None else port,
        verbosity=verbose,
    )
    configure(verbose)
    run(options)  # a ServeError or a DatabaseError: the top-level handler (errors.top_level)
