"""Runs the `consultant` command as `python -m consultant`."""

from consultant.cli import main

main()
