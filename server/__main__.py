"""``python -m server [PORT]`` and the ``musicoder-server`` console script."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from . import app, config

    return app.run(config.load(argv))


if __name__ == "__main__":
    sys.exit(main())
