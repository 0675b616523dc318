"""`python -m portico` runs the same CLI as the `portico` command."""

from portico.cli import main

main()
