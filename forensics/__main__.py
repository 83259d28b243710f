"""`python -m forensics` runs the command-line interface."""

from forensics.cli import main

main()
