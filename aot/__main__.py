"""`python -m scanaot`: the `scanaot` command line, for environments without its script on PATH."""
import sys

from scanaot.tools.cli import main

sys.exit(main())
