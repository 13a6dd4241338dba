"""Retrieval sweep: run the scenario set under several settings, side by side.

    python scripts/sweep.py tests/scenarios/shipped.yaml embedder=use-multilingual,use+e5 chunk_tokens=96,160

Each combination gets its own temporary store; the table shows retrieval
metrics (``advisor eval --retrieval-only``) so chunking, fusion and embedder
choices are judged by the numbers they move.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from advisor import Advisor
from advisor.errors import AdvisorError
from advisor.evaluation import load_scenarios

KEYS = [
    "source_hit@1",
    "source_hit@5",
    "evidence_hit@1",
    "evidence_hit@3",
    "evidence_hit@5",
    "mrr",
    "abstain_accuracy",
    "false_abstain_rate",
    "retrieve_ms_p50",
]


def _value(raw: str) -> object:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    grid = {}
    for spec in argv[1:]:
        name, eq, values = spec.partition("=")
        if not eq or not name or not values:
            print(f"error: {spec!r} is not NAME=VALUE[,VALUE...]; see python scripts/sweep.py --help", file=sys.stderr)
            return 2
        grid[name] = [_value(v) for v in values.split(",")]
    try:
        scenarios = load_scenarios(Path(argv[0]))
    except AdvisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    names = list(grid)
    print("| " + " | ".join(names + KEYS) + " |")
    print("|---" * (len(names) + len(KEYS)) + "|")
    embedders: dict[str, object] = {}
    for combo in itertools.product(*grid.values()) if grid else [()]:
        overrides = dict(zip(names, combo, strict=True))
        with tempfile.TemporaryDirectory() as home:
            adv = Advisor(home=home, **overrides)
            name = adv.settings.embedder
            if name in embedders:  # reuse loaded models across combinations
                adv._embedder = embedders[name]  # type: ignore[assignment]
            embedders[name] = adv.embedder
            adv.ingest()
            report = adv.evaluate(scenarios, retrieval_only=True)
            o = report.summary["overall"]
            cells = [str(v) for v in combo] + [f"{o.get(k, float('nan')):.3f}" for k in KEYS]
            print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
