"""`python -m mmkeras.distribute ...`: the training process the launchers start (see `worker.main`)."""

import sys

from mmkeras.distribute.worker import main

sys.exit(main())
