"""``python -m lca`` is the ``lca`` command (and ``accelerate launch -m lca train ...``)."""

import sys

from lca.cli import main

sys.exit(main())
