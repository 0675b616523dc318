"""`portico confsync` (being built)."""

import typer


def confsync() -> None:
    raise typer.Exit("portico confsync is not built yet")
