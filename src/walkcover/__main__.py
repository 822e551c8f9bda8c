"""``python -m walkcover`` runs the command line."""

from walkcover.cli import app

app(prog_name="walkcover")
