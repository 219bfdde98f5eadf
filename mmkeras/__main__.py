"""`python -m mmkeras ...` is the `mmkeras` command."""

import sys

from mmkeras.cli import main

sys.exit(main())
