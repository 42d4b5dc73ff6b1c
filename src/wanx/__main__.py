"""`python -m wanx` runs the CLI."""

from wanx.cli import main

main()
