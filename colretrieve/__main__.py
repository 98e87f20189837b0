"""`python -m colretrieve` runs the CLI."""

from .cli import main

main()
