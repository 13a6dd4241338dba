"""Retrieval: dense candidates, word matching, optional BM25 and reranking, MMR, and abstention.

By default (see :mod:`advisor.settings`) dense search, word matching, MMR and
abstention run; BM25 (``hybrid``) and the cross-encoder (``reranker``) are off.

1. Dense: the question's embedding against the store (cosine similarity), the
   top ``candidates`` (50).
2. Word matching (on: ``word_weight`` 0.75; 0 turns it off): the dense
   candidates are re-ordered by their z-scored similarity plus ``word_weight``
   times their z-scored cross-lingual word-match score (:mod:`advisor.wordmatch`).
   It needs a word threshold: ``word_threshold``, else the embedder's calibrated
   one (the default embedder, use-multilingual-v3, has one; others have none,
   so for them it is off unless ``word_threshold`` is set).
3. Lexical (off: ``hybrid`` false; it lowered every metric on the shipped
   scenarios): BM25 with Snowball analysis (built lazily from the store,
   rebuilt when the store's version changes).
4. Fusion: weighted reciprocal-rank fusion, ``1/(rrf_k + rank_dense) +
   w/(rrf_k + rank_lexical)``, normalised so a passage first in both lists
   scores 1.0 (with BM25 off: the dense order of step 2 alone, first = 1.0).
5. Reranking (off: ``reranker`` empty): a cross-encoder scores the top
   ``rerank_candidates`` fused candidates against the query and reorders them.
   Its scores, min-max scaled over those candidates (best 1, worst 0), replace
   the fused scores as relevance; candidates beyond them follow in fused order.
6. Diversity: near-duplicates (cosine >= 0.95) are collapsed, and maximal
   marginal relevance (``mmr_lambda`` 0.9) picks the top ``k`` (5).
7. Abstention: when the best dense similarity is below ``abstain_threshold``
   (default: the embedder's calibrated one, :data:`ABSTAIN_THRESHOLDS`) the
   corpus is taken not to cover the question.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from advisor.embedders import Embedder
from advisor.lang import detect_language
from advisor.lexical import BM25Index
from advisor.rerank import Reranker
from advisor.settings import Settings
from advisor.store import Hit, Store, StoredChunk
from advisor.types import Passage, embedding_text
from advisor.wordmatch import WORD_THRESHOLDS, WordMatcher

__all__ = ["ABSTAIN_THRESHOLDS", "Retrieval", "Retriever", "abstain_threshold", "passage_from", "word_threshold"]

# Best dense cosine below which the corpus is taken not to cover a question,
# calibrated per embedder on tests/scenarios/shipped.yaml (see the README).
ABSTAIN_THRESHOLDS = {
    "use-multilingual-v3": 0.32,
    "multilingual-e5-small-q4": 0.82,
    "use-multilingual-v3+multilingual-e5-small-q4": 0.57,
}


def abstain_threshold(settings: Settings, embedder: Embedder) -> float:
    """The configured threshold, else the embedder's calibrated one (0 = never abstain)."""
    if settings.abstain_threshold is not None:
        return settings.abstain_threshold
    return ABSTAIN_THRESHOLDS.get(embedder.name, 0.0)


def word_threshold(settings: Settings, embedder: Embedder) -> float | None:
    """The word-match threshold in use, or None when the word signal is off."""
    if settings.word_weight <= 0:
        return None
    if settings.word_threshold is not None:
        return settings.word_threshold
    return WORD_THRESHOLDS.get(embedder.name)


def _z(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    return (values - values.mean()) / std if std > 1e-9 else np.zeros_like(values)


@dataclass
class Retrieval:
    question: str
    lang: str
    passages: list[Passage]
    abstain: bool
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Fused:
    """The fused candidates: relevance (reciprocal-rank fusion), signals shown by --explain, and the best score."""

    rel: dict[str, float]
    signals: dict[str, dict[str, float]]
    best_possible: float


def passage_from(chunk: StoredChunk, score: float = 0.0, signals: dict[str, float] | None = None) -> Passage:
    m = chunk.meta
    return Passage(
        source=str(m.get("doc_id", "")),
        title=str(m.get("title", "")),
        lang=str(m.get("lang", "")),
        start=int(m.get("start", 0)),
        end=int(m.get("end", 0)),
        text=chunk.text,
        score=round(float(score), 6),
        path=str(m.get("path", "")),
        chunk_id=chunk.chunk_id,
        chunk=int(m.get("index", 0)),
        signals=signals or {},
        flagged=bool(m.get("flagged", False)),
        part=str(m.get("part", "")),
        text_path=str(m.get("text_path", "")),
        page=int(m.get("page", 0)),
    )


class Retriever:
    """Finds the passages that answer a question; models stay loaded across calls."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        words: WordMatcher | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.words = words or WordMatcher(embedder)
        self.reranker = reranker
        self._lex: BM25Index | None = None
        self._lex_key: tuple[int, int] | None = None
        self._texts: dict[str, StoredChunk] = {}
        self._lock = threading.Lock()

    def lexical_index(self) -> BM25Index:
        key = (self.store.version(), self.store.count())
        with self._lock:
            if self._lex is None or self._lex_key != key:
                chunks = list(self.store.all_chunks())
                self._texts = {c.chunk_id: c for c in chunks}
                self._lex = BM25Index(
                    (c.chunk_id, embedding_text(c.text, str(c.meta.get("context", ""))), str(c.meta.get("lang", "en")))
                    for c in chunks
                )
                self._lex_key = key
            return self._lex

    def retrieve(self, question: str, k: int | None = None, context: str = "") -> Retrieval:
        """Top-``k`` passages; ``context`` (an earlier turn) is added to the search query only."""
        s = self.settings
        k = k or s.k
        lang = detect_language(question)
        t0 = time.perf_counter()
        query = f"{context} {question}" if context else question
        q = self.embedder.embed_query(query)
        t1 = time.perf_counter()
        dense = self.store.query(q, s.candidates)
        tw = time.perf_counter()
        dense, word_scores = self._match_words(query, dense)
        t2 = time.perf_counter()
        lexical: list[tuple[str, float]] = []
        if s.hybrid and dense:
            lexical = self.lexical_index().search(query, lang, s.candidates)
        t3 = time.perf_counter()
        fused = self._fuse(dense, word_scores, lexical)
        chunks, vectors = self._candidates(fused, dense, q)
        picked, scaled, rerank_ms = self._pick(query, fused, chunks, vectors, k)
        t4 = time.perf_counter()
        passages = [passage_from(chunks[cid], scaled[cid], fused.signals[cid]) for cid in picked]
        abstain, reason = self._abstention(passages, dense)
        timings = {
            "embed_ms": (t1 - t0) * 1000,
            "dense_ms": (tw - t1) * 1000,
            "words_ms": (t2 - tw) * 1000,
            "lexical_ms": (t3 - t2) * 1000,
            "fuse_ms": (t4 - t3) * 1000 - rerank_ms,
            "retrieve_ms": (t4 - t0) * 1000,
        }
        if self.reranker is not None:
            timings["rerank_ms"] = rerank_ms
        return Retrieval(question, lang, passages, abstain, reason, timings)

    def _match_words(self, query: str, dense: list[Hit]) -> tuple[list[Hit], list[float]]:
        """The dense candidates re-ordered by dense + word-match evidence, and their word scores (none when off)."""
        threshold = word_threshold(self.settings, self.embedder)
        if threshold is None or len(dense) <= 1:
            return dense, []
        # z-scores of both, the word one weighted
        texts = [embedding_text(h.text, str(h.meta.get("context", ""))) for h in dense]
        matched = self.words.scores(query, texts, threshold)
        fused = _z(np.array([h.similarity for h in dense])) + self.settings.word_weight * _z(matched)
        by_fused = sorted(range(len(dense)), key=lambda i: -fused[i])
        return [dense[i] for i in by_fused], [float(matched[i]) for i in by_fused]

    def _fuse(self, dense: list[Hit], word_scores: list[float], lexical: list[tuple[str, float]]) -> _Fused:
        """Weighted reciprocal-rank fusion of the dense (word-matched) and lexical rankings."""
        s = self.settings
        rel: dict[str, float] = {}
        signals: dict[str, dict[str, float]] = {}
        dense_rank = {h.chunk_id: r for r, h in enumerate(sorted(dense, key=lambda h: -h.similarity), start=1)}
        for rank, hit in enumerate(dense, start=1):
            rel[hit.chunk_id] = 1.0 / (s.rrf_k + rank)
            signals[hit.chunk_id] = {"dense": round(hit.similarity, 4), "dense_rank": dense_rank[hit.chunk_id]}
            if word_scores:
                signals[hit.chunk_id].update(words=round(word_scores[rank - 1], 4), fused_rank=rank)
        for rank, (cid, score) in enumerate(lexical, start=1):
            rel[cid] = rel.get(cid, 0.0) + s.lexical_weight / (s.rrf_k + rank)
            sig = signals.setdefault(cid, {})
            sig.update({"bm25": round(score, 4), "bm25_rank": rank})
        best_possible = (1.0 + (s.lexical_weight if lexical else 0.0)) / (s.rrf_k + 1)
        return _Fused(rel, signals, best_possible)

    def _candidates(
        self, fused: _Fused, dense: list[Hit], q: np.ndarray
    ) -> tuple[dict[str, StoredChunk], dict[str, np.ndarray]]:
        """Every fused candidate's chunk and vector (a lexical-only one read from the store, given its cosine)."""
        chunks = {h.chunk_id: StoredChunk(h.chunk_id, h.text, h.meta) for h in dense}
        vectors = {h.chunk_id: h.embedding for h in dense}
        missing = [cid for cid in fused.rel if cid not in chunks]
        if missing:
            for ch in self.store.get(missing):
                chunks[ch.chunk_id] = ch
            vectors.update(self.store.embeddings(missing))
            for cid in missing:
                if cid in vectors:
                    fused.signals[cid]["dense"] = round(float(vectors[cid] @ q), 4)
        return chunks, vectors

    def _pick(
        self,
        query: str,
        fused: _Fused,
        chunks: dict[str, StoredChunk],
        vectors: dict[str, np.ndarray],
        k: int,
    ) -> tuple[list[str], dict[str, float], float]:
        """The top ``k`` ids (reranked when a reranker is set, then MMR), their scores, and the reranker's ms."""
        rel = fused.rel
        order = sorted((cid for cid in rel if cid in chunks), key=lambda c: -rel[c])
        scaled = {cid: rel[cid] / fused.best_possible for cid in order}
        if self.reranker is None or not order:
            return self._mmr(order, rel, vectors, k), scaled, 0.0
        n = self.settings.rerank_candidates
        head, rest = order[:n], order[n:]
        t_r = time.perf_counter()
        raw = self.reranker.score(query, [chunks[cid].text for cid in head])
        rerank_ms = (time.perf_counter() - t_r) * 1000
        ranked = sorted(range(len(head)), key=lambda i: -float(raw[i]))
        lo, hi = float(np.min(raw)), float(np.max(raw))
        for rank, i in enumerate(ranked, start=1):
            cid = head[i]
            fused.signals[cid].update({"rerank": round(float(raw[i]), 4), "rerank_rank": rank})
            scaled[cid] = (float(raw[i]) - lo) / (hi - lo) if hi > lo else 1.0
        picked = self._mmr([head[i] for i in ranked], scaled, vectors, k)
        picked = self._mmr(rest, rel, vectors, k, picked)  # only when fewer than k were reranked
        return picked, scaled, rerank_ms

    def _abstention(self, passages: list[Passage], dense: list[Hit]) -> tuple[bool, str]:
        """Whether to abstain (no passage, or the best dense similarity below the threshold), and why."""
        top_dense = max((h.similarity for h in dense), default=0.0)
        threshold = abstain_threshold(self.settings, self.embedder)
        abstain = not passages or top_dense < threshold
        reason = (
            f"best similarity {top_dense:.2f} is below the threshold {threshold:.2f}"
            if passages and abstain
            else ("the store is empty" if not passages else "")
        )
        return abstain, reason

    def _mmr(
        self,
        order: list[str],
        rel: dict[str, float],
        vectors: dict[str, np.ndarray],
        k: int,
        picked: list[str] | None = None,
    ) -> list[str]:
        """Extend ``picked`` to ``k`` passages from ``order`` (best first) by maximal marginal relevance."""
        lam = self.settings.mmr_lambda
        top = rel[order[0]] if order else 1.0
        picked = list(picked or [])
        pool = list(order)
        while pool and len(picked) < k:
            best, best_score = None, -np.inf
            for cid in pool:
                vec = vectors.get(cid)
                redundancy = max(
                    (float(vec @ vectors[p]) for p in picked if vec is not None and p in vectors),
                    default=0.0,
                )
                if redundancy >= 0.95:
                    continue  # a near-duplicate of a passage already picked
                score = lam * rel[cid] / top - (1 - lam) * redundancy
                if score > best_score:
                    best, best_score = cid, score
            if best is None:
                break
            picked.append(best)
            pool.remove(best)
        return picked
