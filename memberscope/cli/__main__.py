"""``python -m memberscope.cli``."""

from memberscope.cli import main

main()
