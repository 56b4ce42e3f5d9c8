"""`python -m fxcrawl.cli`: how crawls, workers and the scheduler start a child fxcrawl."""

import sys

from fxcrawl.cli import main

sys.exit(main())
