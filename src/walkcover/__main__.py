"""``python -m walkcover`` runs the command line."""

from walkcover.cli import entry

entry()
