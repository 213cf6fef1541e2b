"""``python -m surrogate.training.report SWEEP_DIR``: write and print a sweep's comparison."""

import sys

from surrogate.training.report.sweep import main

sys.exit(main())
