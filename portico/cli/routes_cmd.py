"""`portico routes` (being built)."""

import typer


def routes() -> None:
    raise typer.Exit("portico routes is not built yet")
