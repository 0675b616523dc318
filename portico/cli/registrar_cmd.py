"""`portico registrar` (being built)."""

import typer


def registrar() -> None:
    raise typer.Exit("portico registrar is not built yet")
