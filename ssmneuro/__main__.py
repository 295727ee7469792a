"""``python -m ssmneuro`` = the ``ssmneuro`` command."""

from ssmneuro.cli import main

main()
