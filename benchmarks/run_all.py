"""Run every benchmark script in this folder, one after another, and print a final table of targets.

Usage: ``python benchmarks/run_all.py [name ...]`` (names without .py; default: all).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"common.py", "run_all.py"}


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in SKIP)
    if names:
        scripts = [p for p in scripts if p.stem in names]
    failed = []
    for script in scripts:
        print(f"\n### {script.stem}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0:
            failed.append(script.stem)
    print("\n### summary")
    for script in scripts:
        result = HERE / "results" / f"{script.stem}.json"
        if result.is_file():
            data = json.loads(result.read_text())
            print(f"{script.stem:<28} target: {data['target']}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
