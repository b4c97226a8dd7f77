"""``bench dashboard``: optuna-dashboard on a run's storage."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import command, console


@command(name="dashboard")
def dashboard_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="RUN_OR_STORAGE",
            help="A run folder, a journal file, a SQLite file or a database URL (sqlite:///..., postgresql://...).",
        ),
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
) -> None:
    """Serve optuna-dashboard on a run's storage, with each trial's arch, index and ground truth as user attributes."""
    from ..dashboard import dashboard_server

    server, storage = dashboard_server(target, host=host, port=port)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    console.print(f"optuna-dashboard on {storage}: http://{shown}:{server.server_port}/dashboard (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
