"""How well the faithfulness checks separate right claims from wrong ones.

Runs every pair of ``tests/data/claims.yaml`` (an evidence sentence quoted
verbatim from an article, and a claim in English, Spanish or German that
renders it faithfully or with one reversal, role swap, changed number or added
condition) through each check of :mod:`advisor.faithfulness`, and prints, per
check and per kind of error, how many wrong claims it stops and how many right
ones it keeps, plus the model's yes-probability threshold sweep::

    HF_HUB_OFFLINE=1 python scripts/faithfulness.py                  # default model
    HF_HUB_OFFLINE=1 python scripts/faithfulness.py --model PATH.gguf --json out.json

The lexical check needs no model; ``--no-model`` runs only that one. ``--likelihood`` adds the
alternatives measured against the yes/no check: how likely the model finds the claim as its own
translation of the evidence, and the reverse. ``--roundtrip`` adds a back-translation check on the
cross-lingual pairs.
``--claim-match`` instead measures the rules ``advisor eval``'s ``claim_recall`` uses on
``tests/data/claim_match.yaml`` (hand-labelled pairs of an answer sentence and an expected claim),
at several thresholds: with the model, its yes-probability for "does the statement make the
expected point?" (CLAIM_JUDGE); without (``--no-model``), cosine >= CLAIM_MATCH and no lexical
conflict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from advisor.faithfulness import JUDGE_THRESHOLD, lexical_conflicts, yes_probability
from advisor.prompts import check_messages

REPO = Path(__file__).resolve().parent.parent
CLAIMS = REPO / "tests" / "data" / "claims.yaml"
SOURCE_LANG = {"linkedin-interviewer": "de"}  # every other article is Spanish (corpus/corpus.toml)


def load(path: Path) -> list[dict[str, Any]]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in items:
        item["evidence_lang"] = SOURCE_LANG.get(item["source"], "es")
    return list(items)


def tally(rows: list[dict[str, Any]], stopped: str) -> dict[str, Any]:
    """Wrong claims stopped and right claims kept by the check whose verdict is ``row[stopped]``."""
    wrong = [r for r in rows if r["label"] == "wrong"]
    right = [r for r in rows if r["label"] == "faithful"]
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in wrong:
        by_kind[r["kind"]][0] += r[stopped]
        by_kind[r["kind"]][1] += 1
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        cell = by_lang[r["lang"]]
        if r["label"] == "wrong":
            cell[0] += r[stopped]
            cell[1] += 1
        else:
            cell[2] += not r[stopped]
            cell[3] += 1
    return {
        "wrong_stopped": sum(r[stopped] for r in wrong),
        "wrong": len(wrong),
        "right_kept": sum(not r[stopped] for r in right),
        "right": len(right),
        "by_kind": {k: f"{a}/{b}" for k, (a, b) in sorted(by_kind.items())},
        "by_language": {k: f"stops {a}/{b}, keeps {c}/{d}" for k, (a, b, c, d) in sorted(by_lang.items())},
    }


def claim_match_report(path: Path, gen: Any | None) -> dict[str, Any]:
    """Agreement of ``claim_recall``'s matching rules with hand labels, by threshold.

    Without a model: cosine >= t and no lexical conflict. With one (what ``advisor eval`` uses
    when it runs the model): cosine >= CLAIM_CANDIDATE and the model's yes-probability >= t.
    """
    from advisor.embedders import make_embedder
    from advisor.evaluation import CLAIM_CANDIDATE, CLAIM_MATCH
    from advisor.faithfulness import CLAIM_JUDGE, claim_probability

    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    emb = make_embedder("use-multilingual", None)
    a = emb.embed_documents([i["sentence"] for i in items])
    b = emb.embed_documents([i["claim"] for i in items])
    sims = [float(x @ y) for x, y in zip(a, b, strict=True)]
    conflict = [bool(lexical_conflicts(i["claim"], i["lang"], i["sentence"], i["lang"])) for i in items]

    def agreement(said: list[bool]) -> str:
        agree = sum(s == bool(i["match"]) for s, i in zip(said, items, strict=True))
        found = sum(s and i["match"] for s, i in zip(said, items, strict=True))
        wrong = sum(s and not i["match"] for s, i in zip(said, items, strict=True))
        return (
            f"agrees {agree}/{len(items)}; matches found {found}/{sum(bool(i['match']) for i in items)}; "
            f"non-matches matched {wrong}/{sum(not i['match'] for i in items)}"
        )

    report: dict[str, Any] = {"pairs": len(items), "embedding_rule": {"threshold_in_use": CLAIM_MATCH}}
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        report["embedding_rule"][str(t)] = agreement(
            [sim >= t and not c for sim, c in zip(sims, conflict, strict=True)]
        )
    if gen is not None:
        probs = [claim_probability(gen, i["sentence"], i["claim"]) for i in items]
        report["model_rule"] = {"threshold_in_use": CLAIM_JUDGE, "candidate_cosine": CLAIM_CANDIDATE}
        for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            said = [sim >= CLAIM_CANDIDATE and p >= t for sim, p in zip(sims, probs, strict=True)]
            report["model_rule"][str(t)] = agreement(said)
    return report


def counts(rows: list[dict[str, Any]], stop: list[bool]) -> tuple[int, int]:
    """(wrong claims stopped, right claims kept) when ``stop[i]`` says whether row i is stopped."""
    stopped = sum(s for s, r in zip(stop, rows, strict=True) if r["label"] == "wrong")
    kept = sum(not s for s, r in zip(stop, rows, strict=True) if r["label"] != "wrong")
    return stopped, kept


def best_balance(rows: list[dict[str, Any]], scores: list[float], lexical: list[bool]) -> str:
    """The threshold on ``scores`` (with the lexical verdicts) that best balances stopped and kept."""
    wrong = sum(r["label"] == "wrong" for r in rows)
    right = len(rows) - wrong
    best = (-1.0, "")
    for t in sorted(set(scores)):
        stopped, kept = counts(rows, [lex or score < t for lex, score in zip(lexical, scores, strict=True)])
        balance = min(stopped / wrong, kept / right)
        if balance > best[0]:
            best = (balance, f"threshold {t:.3f}: stops {stopped}/{wrong}, keeps {kept}/{right}")
    return best[1]


def likelihood_report(rows: list[dict[str, Any]], gen: Any) -> dict[str, Any]:
    """Alternatives to the yes/no check, measured: how likely the model finds the claim as a translation.

    Per pair: the mean log-probability of the claim as the model's translation of the evidence
    (forward), of the evidence as its translation of the claim (backward), and the forward score
    minus the claim's score with no evidence (pointwise mutual information). For each, the threshold
    with the best balance of wrong claims stopped and right ones kept (with the lexical check),
    chosen on this very set, so an optimistic bound.
    """
    from statistics import mean

    from advisor.prompts import LANGUAGE_NAMES, translate_messages

    feats: list[dict[str, float]] = []
    for r in rows:
        fwd = gen.score(translate_messages(r["evidence"], r["lang"]), r["claim"])
        bwd = gen.score(translate_messages(r["claim"], r["evidence_lang"]), r["evidence"])
        plain = [{"role": "user", "content": f"Write one sentence in {LANGUAGE_NAMES.get(r['lang'], 'English')}."}]
        alone = gen.score(plain, r["claim"])
        feats.append({"forward": mean(fwd), "backward": mean(bwd), "pmi": mean(fwd) - mean(alone)})
    report: dict[str, Any] = {}
    for name in ("forward", "backward", "pmi"):
        report[name] = best_balance(rows, [f[name] for f in feats], [bool(r["lexical"]) for r in rows])
    # ranking, not calibration: for each evidence sentence, is the faithful claim scored above the wrong one?
    pairs: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for r, f in zip(rows, feats, strict=True):
        pairs[r["id"].rsplit("-", 1)[0]][r["label"]] = f | {"yes/no check": r["p_yes"]}
    both = [p for p in pairs.values() if len(p) == 2]
    report["faithful_ranked_above_wrong"] = {
        name: f"{sum(p['faithful'][name] > p['wrong'][name] for p in both)}/{len(both)}"
        for name in ("yes/no check", "forward", "backward", "pmi")
    }
    return report


def roundtrip_report(rows: list[dict[str, Any]], gen: Any) -> dict[str, Any]:
    """A round-trip check, measured on the cross-lingual pairs: the claim translated back into the
    evidence's language by the model, then compared with the evidence in one language (embedding
    cosine, the lexical check, and the model's yes/no check of the two same-language sentences).
    Best-balance thresholds are chosen on this very set (an optimistic bound)."""
    from advisor.embedders import UseEmbedder
    from advisor.prompts import translate_messages

    embedder = UseEmbedder()
    cross = [r for r in rows if r["lang"] != r["evidence_lang"]]
    for r in cross:
        reply = gen.chat(translate_messages(r["claim"], r["evidence_lang"]), 160, timeout=120)
        back = reply.text.strip().splitlines()[0] if reply.text.strip() else ""
        vectors = embedder.embed_documents([back, r["evidence"]])
        r["back"] = back
        r["back_cosine"] = float(vectors[0] @ vectors[1])
        r["back_lexical"] = bool(lexical_conflicts(r["evidence"], r["evidence_lang"], back, r["evidence_lang"]))
        same = check_messages(r["evidence"], r["evidence_lang"], back, r["evidence_lang"])
        r["back_p_yes"] = yes_probability(gen, same)
    wrong = sum(r["label"] == "wrong" for r in cross)
    right = len(cross) - wrong
    report: dict[str, Any] = {"pairs": len(cross)}
    lexical = [r["lexical_stops"] or r["back_lexical"] for r in cross]
    for name in ("back_cosine", "back_p_yes"):
        report[name] = best_balance(cross, [r[name] for r in cross], lexical)
    stopped, kept = counts(cross, [r["lexical_stops"] or r["p_yes"] < 0.4 for r in cross])  # today's check
    report["today (lexical + yes/no >= 0.4)"] = f"stops {stopped}/{wrong}, keeps {kept}/{right}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=Path, default=CLAIMS)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: the advisor's default model)")
    parser.add_argument("--no-model", action="store_true", help="only the lexical check")
    parser.add_argument("--threshold", type=float, default=JUDGE_THRESHOLD)
    parser.add_argument("--json", type=Path, default=None, help="write every pair's scores here")
    parser.add_argument("--claim-match", action="store_true", help="measure claim_recall's matching rule instead")
    parser.add_argument("--likelihood", action="store_true", help="also measure translation-likelihood checks")
    parser.add_argument("--roundtrip", action="store_true", help="also measure a round-trip (back-translation) check")
    args = parser.parse_args(argv)
    gen = None
    if not args.no_model:
        from advisor.generation import LlamaCppGenerator, default_model_path

        gen = LlamaCppGenerator(args.model or default_model_path(), n_ctx=2048)
    if args.claim_match:
        print(json.dumps(claim_match_report(REPO / "tests" / "data" / "claim_match.yaml", gen), indent=2))
        return 0

    rows = load(args.claims)
    t0 = time.perf_counter()
    for n, r in enumerate(rows, start=1):
        r["lexical"] = lexical_conflicts(r["evidence"], r["evidence_lang"], r["claim"], r["lang"])
        r["lexical_stops"] = bool(r["lexical"])
        if gen is not None:
            messages = check_messages(r["evidence"], r["evidence_lang"], r["claim"], r["lang"])
            r["p_yes"] = yes_probability(gen, messages)
            r["model_stops"] = r["p_yes"] < args.threshold
            r["combined_stops"] = r["lexical_stops"] or r["model_stops"]
        print(f"\r{n}/{len(rows)} pairs, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    checks = ["lexical_stops"] + (["model_stops", "combined_stops"] if gen is not None else [])
    report: dict[str, Any] = {"pairs": len(rows), "threshold": args.threshold}
    for check in checks:
        report[check.removesuffix("_stops")] = tally(rows, check)
    if gen is not None:
        sweep = {}
        for t in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
            for r in rows:
                r["_s"] = r["lexical_stops"] or r["p_yes"] < t
            t_report = tally(rows, "_s")
            stops = f"{t_report['wrong_stopped']}/{t_report['wrong']}"
            sweep[str(t)] = f"stops {stops}, keeps {t_report['right_kept']}/{t_report['right']}"
        report["combined_by_threshold"] = sweep
        report["seconds_per_pair"] = round((time.perf_counter() - t0) / len(rows), 2)
        if args.likelihood:
            report["likelihood_best_threshold"] = likelihood_report(rows, gen)
        if args.roundtrip:
            report["roundtrip_best_threshold"] = roundtrip_report(rows, gen)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(
            json.dumps([{k: v for k, v in r.items() if k != "_s"} for r in rows], indent=1, ensure_ascii=False)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
