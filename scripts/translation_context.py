"""Translating a quote with the sentences before it as context: does keeping the better-checked rendering help?

Every item of ``tests/data/translations_in_context.yaml`` is an English item of
``tests/data/translations.yaml`` (a translation the advisor showed, labelled by reading it) with
a second translation made with the two sentences before the quote shown as context, labelled the
same way. For both renderings the script runs the advisor's checks (the plain-translation rules,
the lexical conflicts, the model's strict check at the translation threshold, the confidence
floor) and prints how many faithful and wrong translations each way of choosing would show::

    HF_HUB_OFFLINE=1 python scripts/translation_context.py              # about 4 min here
    HF_HUB_OFFLINE=1 python scripts/translation_context.py --json out.json

The rule advisor.translation uses with ADVISOR_TRANSLATION_CONTEXT=true is "the better checked":
of the renderings that pass every check, the one the model's strict check scores higher (the
plain one on a tie). On 2026-12-03 (48 items; 16 plain and 17 in-context ones wrong): plain
alone shows 32 faithful and 16 wrong; in context alone 24 and 8 (16 refused); the better checked
36 and 12 (none refused). Where the two labels differ, the check's probability is higher for the
faithful rendering in 16 of 19 pairs: it ranks two renderings of one quote well, though it cannot
judge one alone (docs/answers.md). Run again after requests became repeatable: plain alone
32 / 15 (one refused), the others unchanged, 14 of 19 pairs ranked right.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from advisor.translation import check_translation

REPO = Path(__file__).resolve().parent.parent
ITEMS = REPO / "tests" / "data" / "translations_in_context.yaml"


def verdict(adv: Any, item: dict[str, Any], text: str) -> tuple[bool, float]:
    """Whether ``text`` passes every check as a translation of the item's quote, and the check's score."""
    done, score = check_translation(adv.generator, adv.embedder, text, item["quote"], item["quote_lang"], item["lang"])
    return done.text is not None, score


def better(r: dict[str, Any]) -> str | None:
    """The label of the rendering advisor.translation keeps: the in-context one only when it passes
    and the check scores it higher than the plain one (or the plain one fails); None when neither passes."""
    if r["ctx_ok"] and (not r["plain_ok"] or r["ctx_p"] > r["plain_p"]):
        return str(r["label"])
    return str(r["plain_label"]) if r["plain_ok"] else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every item's verdicts here")
    args = parser.parse_args(argv)
    from advisor import Advisor

    items = yaml.safe_load(ITEMS.read_text(encoding="utf-8"))
    rows = []
    with Advisor(tempfile.mkdtemp(prefix="advisor-tctx-")) as adv:
        for n, item in enumerate(items, 1):
            plain_ok, plain_p = verdict(adv, item, item["plain"])
            ctx_ok, ctx_p = verdict(adv, item, item["in_context"])
            rows.append({**item, "plain_ok": plain_ok, "plain_p": plain_p, "ctx_ok": ctx_ok, "ctx_p": ctx_p})
            print(f"{n}/{len(items)}", file=sys.stderr, end="\r")

    def shown(choose: Any) -> tuple[int, int, int]:
        faithful = wrong = none = 0
        for r in rows:
            label = choose(r)
            none += label is None
            faithful += label == "faithful"
            wrong += label == "wrong"
        return faithful, wrong, none

    rules = {
        "plain alone": lambda r: r["plain_label"] if r["plain_ok"] else None,
        "in context alone": lambda r: r["label"] if r["ctx_ok"] else None,
        "the better checked (in use with the setting)": better,
    }
    print(
        f"{len(rows)} items; wrong: plain {sum(r['plain_label'] == 'wrong' for r in rows)}, "
        f"in context {sum(r['label'] == 'wrong' for r in rows)}"
    )
    print("| rule | faithful shown | wrong shown | none shown |\n|---|---|---|---|")
    for name, rule in rules.items():
        f, w, n = shown(rule)
        print(f"| {name} | {f} | {w} | {n} |")
    differ = [r for r in rows if r["label"] != r["plain_label"]]
    ranked = sum((r["ctx_p"] > r["plain_p"]) == (r["label"] == "faithful") for r in differ)
    print(f"where the labels differ, the check scores the faithful rendering higher in {ranked} of {len(differ)}")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
