"""``python -m advisor``, and the ``advisor`` command's entry point.

The command line's libraries (typer, rich) take a moment to load; a Ctrl-C in
that moment is one ``error: interrupted`` line and exit code 130, like a Ctrl-C
at any later point, not a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``advisor`` command line."""
    try:
        from advisor.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
