"""``python -m cli``: the same as the ``musicoder`` command."""
import sys

from . import main

sys.exit(main())
