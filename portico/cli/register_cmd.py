"""`portico register` / `portico unregister` (being built)."""

import typer


def register() -> None:
    raise typer.Exit("portico register is not built yet")


def unregister() -> None:
    raise typer.Exit("portico unregister is not built yet")
