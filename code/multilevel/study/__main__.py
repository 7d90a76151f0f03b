"""``python -m multilevel.study``: run the simulation study."""

import sys

from multilevel.study.cli import main

sys.exit(main())
