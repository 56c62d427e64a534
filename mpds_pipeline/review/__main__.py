"""``python -m mpds_pipeline.review --data-dir DIR``: the same as ``mpds review``."""

import sys

from .server import main

sys.exit(main())
