"""`python -m mmkeras ...` is the `mmkeras` command."""

import sys

from mmkeras.apps.cli import main

sys.exit(main())
