"""``python -m wsol ...`` is the ``wsol`` command (and what ``torchrun -m wsol`` runs)."""

import sys

from wsol.cli import main

sys.exit(main())
