"""``python -m mpds_pipeline.sample_server --port 0``."""

import sys

from .server import main

sys.exit(main())
