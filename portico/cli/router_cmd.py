"""`portico router` (being built)."""

import typer


def router() -> None:
    raise typer.Exit("portico router is not built yet")
