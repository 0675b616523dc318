"""`portico up` (being built)."""

import typer


def up() -> None:
    raise typer.Exit("portico up is not built yet")
