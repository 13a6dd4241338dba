"""A BM25 index with language-aware analysis (Snowball stemmers, stop words).

Each chunk is analysed in its own language; a query in the question's language.
It complements the multilingual dense retriever on exact terms (names, jargon)
and same-language questions.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from advisor.lang import STOP_WORDS, words

__all__ = ["BM25Index", "analyse"]

_STEMMERS = {"en": "english", "es": "spanish", "de": "german"}


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(_STEMMERS.get(lang, "english"))


def analyse(text: str, lang: str) -> list[str]:
    """Lower-case, drop stop words, stem with the language's Snowball stemmer."""
    stop = STOP_WORDS.get(lang, frozenset())
    kept = [w for w in words(text) if w not in stop and len(w) > 1]
    return list(_stemmer(lang).stemWords(kept))


class BM25Index:
    """Okapi BM25 over an inverted index (k1=1.2, b=0.75)."""

    def __init__(self, docs: Iterable[tuple[str, str, str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths: list[int] = []
        for doc_id, text, lang in docs:
            terms = Counter(analyse(text, lang))
            idx = len(self.ids)
            self.ids.append(doc_id)
            lengths.append(sum(terms.values()))
            for term, tf in terms.items():
                self._postings[term].append((idx, tf))
        self._lengths = lengths
        self._avg = (sum(lengths) / len(lengths)) if lengths else 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, lang: str, n: int) -> list[tuple[str, float]]:
        """Top ``n`` ``(id, score)`` pairs, best first; empty if nothing matches."""
        if not self.ids:
            return []
        total = len(self.ids)
        scores: dict[int, float] = defaultdict(float)
        for term in set(analyse(query, lang)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
            for idx, tf in postings:
                norm = self.k1 * (1 - self.b + self.b * self._lengths[idx] / (self._avg or 1.0))
                scores[idx] += idf * tf * (self.k1 + 1) / (tf + norm)
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [(self.ids[i], s) for i, s in best]
