"""``python -m surrogate.audit MODULE:FACTORY --input SHAPE``: see ``surrogate.audit.cli``."""

import sys

from surrogate.audit.cli import main

sys.exit(main())
