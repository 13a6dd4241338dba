"""Does the model's confidence in its own translation tell a wrong one from a right one?

Every item of ``tests/data/translations.yaml`` is a translation the advisor showed (it passed
every check of :mod:`advisor.translation`), labelled by reading it against its quote:
``faithful`` or ``wrong`` (a word or a relation the quote does not have). For each, the script
reads the default model's probability of every token of that translation as its own reply to the
translation request (one forward pass, nothing generated) and prints, for floors on the lowest
token probability and on the mean log-probability, how many wrong translations a check at that
floor would stop and how many faithful ones it would keep::

    HF_HUB_OFFLINE=1 python scripts/translation_confidence.py
    HF_HUB_OFFLINE=1 python scripts/translation_confidence.py --json out.json

A small model that does not know a word ("aufdringlich") still writes some word greedily; the
question is whether it does so with visibly less confidence than when it translates right.
On 2026-12-02 (68 items, 29 wrong): a floor of 0.1 on the lowest token probability, chosen on the
held-out items (2/13 wrong stopped, 21/21 faithful kept), stopped 6/16 wrong and kept 17/18
faithful ones on the shipped items; advisor.translation uses it (CONFIDENCE_FLOOR).

``--round-trip`` also has the model translate each translation back into the quote's language
(greedy, the advisor's own translation request) and scores the back-translation against the quote
with chrF (character n-gram F-score, n = 1..6, beta = 2): a translation that changed a word or a
relation should come back further from the quote. The sweep is printed for all items and for the
items the confidence floor lets through (what a round-trip check would add to it)::

    HF_HUB_OFFLINE=1 python scripts/translation_confidence.py --round-trip   # ~10 min here

On 2026-12-03, of the 21 wrong and 38 faithful translations that pass the confidence floor:
chrF below 0.54 stopped 9 wrong and dropped 4 faithful (held-out 4/11 and 3/21, shipped 5/10 and
1/17). advisor.translation applies that floor (ROUND_TRIP_FLOOR) when
ADVISOR_TRANSLATION_ROUND_TRIP=true; it is off by default (see docs/answers.md).

``--reverse`` also asks the model's strict check the other way round (the translation as the
source, the quote as the claim; the advisor asks it quote first) and sweeps floors on that
probability over the items the confidence floor lets through. On 2026-12-03: 0.6 stopped 4 of the
21 wrong ones and dropped 2 of 38 faithful ones; 0.7 stopped 8 and dropped 11. Not used.

``--check`` sweeps floors on the probability of the model's strict check as the advisor asks it
(quote as the source, translation as the claim; every item passed it at 0.4), over all items and
per asker language: would a stricter bar for the translations a model-written answer rests on
keep wrong ones out of answers? On 2026-12-03: 0.7 stopped 13 of 29 wrong and kept 32 of 39
faithful ones, but 10 of the 13 are German (German translations score low whether right or
wrong: 0.7 also drops all 6 faithful German ones). Among the 48 English ones (16 wrong), 0.75
stops 1 wrong and drops 4 faithful, 0.8 stops 9 and drops 13 ("stressful and self-doubting" for
*aufdringlich als auch zu selbstbewusst* scores 0.75). Not used.

``--words`` (no model) scores each translation by the share of the quote's content words it
renders, word by word with the multilingual word vectors at the word-match threshold
(:func:`advisor.wordmatch.covered_share`, the rule an answer sentence must pass against its
evidence). On 2026-12-03: below 0.5 stopped 16 of 29 wrong and dropped 8 of 39 faithful; the
"stressful and self-doubting" one renders 0.51. Held-out and shipped items disagree (below 0.4:
held-out 1 of 13 wrong stopped, 3 of 21 faithful dropped; shipped 10 of 16 and 0 of 18). Not used.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from advisor.faithfulness import yes_probability
from advisor.prompts import Message, check_messages
from advisor.translation import CONFIDENCE_FLOOR, chrf, lowest_probability, translate_back, translation_logprobs
from advisor.wordmatch import WORD_THRESHOLDS, covered_share

REPO = Path(__file__).resolve().parent.parent
ITEMS = REPO / "tests" / "data" / "translations.yaml"
MIN_FLOORS = (0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3)
MEAN_FLOORS = (-1.0, -0.8, -0.6, -0.5, -0.4, -0.3, -0.2)
CHRF_FLOORS = (0.4, 0.45, 0.5, 0.52, 0.54, 0.56, 0.6)
REVERSE_FLOORS = (0.5, 0.55, 0.6, 0.65, 0.7)
CHECK_FLOORS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
WORD_FLOORS = (0.4, 0.5, 0.6, 0.7)


def load(path: Path) -> list[dict[str, Any]]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    for n, item in enumerate(items, start=1):
        missing = {"quote", "lang", "translation", "label"} - set(item)
        if missing or item["label"] not in {"faithful", "wrong"}:
            raise SystemExit(f"error: {path}: item {n} lacks {sorted(missing)} or has a bad label")
    return list(items)


def confidence(logprobs: list[float]) -> tuple[float, float]:
    """(lowest token probability, as the advisor's check reads it; mean token log-probability)."""
    return lowest_probability(logprobs), (sum(logprobs) / len(logprobs) if logprobs else 0.0)


def sweep(rows: list[dict[str, Any]], key: str, floors: tuple[float, ...]) -> list[dict[str, Any]]:
    """For each floor: wrong translations below it (stopped) and faithful ones at or above it (kept)."""
    wrong = [r for r in rows if r["label"] == "wrong"]
    right = [r for r in rows if r["label"] == "faithful"]
    return [
        {
            "floor": floor,
            "wrong_stopped": f"{sum(r[key] < floor for r in wrong)}/{len(wrong)}",
            "right_kept": f"{sum(r[key] >= floor for r in right)}/{len(right)}",
        }
        for floor in floors
    ]


def reverse_messages(item: dict[str, Any]) -> list[Message]:
    """The model's strict check asked the other way round: the translation as the source, the quote as the claim."""
    return check_messages(item["translation"], item["lang"], item["quote"], item["quote_lang"])


def check_messages_for(item: dict[str, Any]) -> list[Message]:
    """The model's strict check as the advisor asks it of a translation: the quote as the source."""
    return check_messages(item["quote"], item["quote_lang"], item["translation"], item["lang"])


def parts(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows by scenario set, by asker language ("lang:en") and all together."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.get("set", "all"), []).append(row)
    for row in rows:
        out.setdefault(f"lang:{row['lang']}", []).append(row)
    out["all"] = list(rows)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", nargs="?", type=Path, default=ITEMS)
    ap.add_argument("--json", type=Path, help="write every item's scores here")
    ap.add_argument("--round-trip", action="store_true", help="also score each translation translated back (chrF)")
    ap.add_argument("--reverse", action="store_true", help="also ask the model's check the other way round")
    ap.add_argument("--check", action="store_true", help="also sweep stricter floors on the model's check")
    ap.add_argument("--words", action="store_true", help="also score the share of the quote's words rendered")
    args = ap.parse_args(argv)
    items = load(args.items)
    from advisor import Advisor

    rows = []
    with Advisor(tempfile.mkdtemp(prefix="advisor-tconf-")) as adv:
        gen = adv.generator
        words = adv.words if args.words else None
        threshold = WORD_THRESHOLDS.get(adv.embedder.name, 0.7) if args.words else 0.0
        for item in items:
            source = item.get("via") or item["quote"]
            logprobs = translation_logprobs(gen, source, item["lang"], item["translation"])
            if logprobs is None:
                raise SystemExit("error: this generator returns no scores; use the default local model")
            low, mean = confidence(logprobs)
            row = item | {"min_p": round(low, 4), "mean_logp": round(mean, 4)}
            if args.round_trip:
                text = item["translation"]
                back = translate_back(gen, text, item["quote_lang"]).text.strip()
                row |= {"back": back, "round_trip": round(chrf(back, item["quote"]), 4)}
            if args.reverse:
                row |= {"reverse_p": round(yes_probability(gen, reverse_messages(item)), 4)}
            if args.check:
                row |= {"check_p": round(yes_probability(gen, check_messages_for(item)), 4)}
            if words is not None:
                row |= {"words": round(covered_share(words, threshold, item["quote"], item["translation"]), 4)}
            rows.append(row)
            print(f"{item['label']:8} min_p={low:.3f} mean={mean:.2f} {item['translation'][:70]}", file=sys.stderr)
    report: dict[str, Any] = {"items": len(rows)}
    for name, part in parts(rows).items():
        report[name] = {"min_p": sweep(part, "min_p", MIN_FLOORS), "mean_logp": sweep(part, "mean_logp", MEAN_FLOORS)}
        if args.round_trip:
            sure = [r for r in part if r["min_p"] >= CONFIDENCE_FLOOR]
            report[name] |= {
                "round_trip": sweep(part, "round_trip", CHRF_FLOORS),
                "round_trip_after_confidence": sweep(sure, "round_trip", CHRF_FLOORS),
            }
        if args.reverse:
            sure = [r for r in part if r["min_p"] >= CONFIDENCE_FLOOR]
            report[name] |= {"reverse_after_confidence": sweep(sure, "reverse_p", REVERSE_FLOORS)}
        if args.check:
            report[name] |= {"check": sweep(part, "check_p", CHECK_FLOORS)}
        if args.words:
            report[name] |= {"words": sweep(part, "words", WORD_FLOORS)}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
