"""Re-record the golden backtests (a deliberate act: review the diff before committing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_cases import CASES, ROOT, record_of


def main(names: list[str]) -> None:
    for case in CASES:
        if names and case.name not in names:
            continue
        record = record_of(case.run())
        path = ROOT / f"{case.name}.json"
        path.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        print(f"recorded {path.name}: {record['n_fills']} fills")


if __name__ == "__main__":
    main(sys.argv[1:])
