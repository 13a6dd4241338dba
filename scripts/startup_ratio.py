"""``advisor --help`` start-up of this checkout against a previous version, as interleaved ratios.

    git archive <old-commit> advisor | tar -x -C /tmp/advisor-old
    python scripts/startup_ratio.py --base /tmp/advisor-old --rounds 30

Each round runs ``python -m advisor --help`` once with ``PYTHONPATH`` at the base
and once at this checkout, alternating which goes first, and prints the median
wall times and the median of the per-round ratios (this / base). Run it with the
interpreter whose environment has advisor's dependencies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def once(root: Path, command: Sequence[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "advisor", *command], env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="a folder holding the previous version's advisor/")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--command", default="--help", help="advisor arguments to time (default --help)")
    args = parser.parse_args(argv)
    if not (args.base / "advisor" / "__init__.py").is_file():
        parser.error(f"{args.base} holds no advisor/ package; see the usage above")
    roots = {"base": args.base, "this": HERE}
    command = args.command.split()
    for root in roots.values():  # untimed: .pyc files, page cache
        once(root, command)
    times: dict[str, list[float]] = {name: [] for name in roots}
    ratios: list[float] = []
    for n in range(args.rounds):
        order = ["base", "this"] if n % 2 == 0 else ["this", "base"]
        got = {name: once(roots[name], command) for name in order}
        for name, value in got.items():
            times[name].append(value)
        ratios.append(got["this"] / got["base"])
    medians = ", ".join(f"{name} {statistics.median(values) * 1000:.0f} ms" for name, values in times.items())
    ratio = statistics.median(ratios)
    print(f"advisor {args.command}: {medians}; median ratio this/base {ratio:.3f} ({args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
