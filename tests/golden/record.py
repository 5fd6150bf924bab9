"""Re-record the golden backtests (a deliberate act: review the diff before committing).

The same as ``tradetower regress --update [case ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulator.research.regress import regress


def main(names: list[str]) -> int:
    return regress(Path(__file__).resolve().parent, names, update=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
