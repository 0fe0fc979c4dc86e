"""``python -m gitml``: the same command line as ``gitml``."""

from gitml.cli import main

main()
