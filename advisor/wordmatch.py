"""Cross-lingual word matching: a second retrieval signal next to the dense one.

A passage embedding blurs a question's specific words, and a lexical index
cannot match "recruiter" with "reclutador". Here every content word is embedded
on its own with the passage embedder (multilingual, so a word lands near its
translations), and a candidate passage scores

    sum over the question's content words w of  max_v sim(w, v)

over the passage's words v, counting only matches with ``sim >= threshold``
(late interaction at word level, like ColBERT's MaxSim, with word vectors).
Word vectors are computed once per distinct word and kept in a ``.npz`` file
beside the store, so asking costs one embedding call for the question's words.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from advisor.embedders import Embedder
from advisor.lang import STOP_WORDS, words

__all__ = ["WORD_THRESHOLDS", "WordMatcher", "content_words", "covered_share"]

# Word-to-word cosine from which two words count as the same term, per embedder
# (calibrated on tests/scenarios/shipped.yaml; see the README). Embedders not
# listed here get no word signal unless ADVISOR_WORD_THRESHOLD is set.
WORD_THRESHOLDS = {"use-multilingual-v3": 0.7}

_STOP = frozenset().union(*STOP_WORDS.values())


@functools.lru_cache(maxsize=4096)
def _content_words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w for w in words(text) if len(w) > 2 and w not in _STOP))


def content_words(text: str) -> list[str]:
    """Lower-cased words of three letters or more, without stop words and numbers (unique, in order)."""
    return list(_content_words(text))


class WordMatcher:
    """Word vectors (cached, optionally on disk) and the word-match score."""

    def __init__(self, embedder: Embedder, path: Path | None = None) -> None:
        self.embedder = embedder
        self.path = path
        self._index: dict[str, int] = {}
        # float16, in memory as on disk: half the size, and scores never depend on the cache
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float16)
        self._lock = threading.Lock()
        self._dirty = False
        # no cache on disk, or one that cannot be read: the next ingest learns every stored chunk's words
        self.missing = path is not None
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    names = [str(w) for w in data["words"]]
                    vectors = np.asarray(data["vectors"], dtype=np.float16)
                if vectors.shape == (len(names), embedder.dim):
                    self._index = {w: i for i, w in enumerate(names)}
                    self._vectors = vectors
                    self.missing = False
            except Exception:  # empty, truncated or garbled: numpy raises EOFError, TokenError, ...
                pass  # an unreadable cache is rebuilt on the next ingest

    def __len__(self) -> int:
        return len(self._index)

    def vectors(self, words: Sequence[str]) -> np.ndarray:
        """Vectors of ``words`` (rows in order), embedding the ones not seen before."""
        with self._lock:
            missing = [w for w in dict.fromkeys(words) if w not in self._index]
            if missing:
                new = np.asarray(self.embedder.embed_documents(missing), dtype=np.float16)
                base = len(self._index)
                self._index.update((w, base + i) for i, w in enumerate(missing))
                self._vectors = np.concatenate([self._vectors, new]) if base else new
                self._dirty = True
            rows = [self._index[w] for w in words]
            if not rows:
                return np.zeros((0, self.embedder.dim), dtype=np.float32)
            return self._vectors[rows].astype(np.float32)

    def learn(self, texts: Iterable[str]) -> int:
        """Embed the words of ``texts`` not seen yet; returns how many were new."""
        before = len(self._index)
        vocabulary: dict[str, None] = {}
        for text in texts:
            vocabulary.update(dict.fromkeys(content_words(text)))
        self.vectors(list(vocabulary))
        return len(self._index) - before

    def save(self) -> None:
        """Write the cache atomically (a crash leaves the old file or the new one)."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            names = np.array(list(self._index), dtype=str)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, words=names, vectors=self._vectors)
                os.replace(tmp, self.path)
                self.missing = False
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self._dirty = False

    def scores(self, question: str, texts: Sequence[str], threshold: float) -> np.ndarray:
        """The word-match score of each text for ``question`` (0 where nothing matches)."""
        q_words = content_words(question)
        out = np.zeros(len(texts), dtype=np.float32)
        if not q_words or not texts:
            return out
        per_text = [content_words(t) for t in texts]
        q = self.vectors(q_words)
        for i, text_words in enumerate(per_text):
            if not text_words:
                continue
            best = (self.vectors(text_words) @ q.T).max(axis=0)  # each question word's best match
            out[i] = float(best[best >= threshold].sum())
        return out


def covered_share(matcher: WordMatcher, threshold: float, text: str, rendering: str) -> float:
    """The share of ``text``'s content words that ``rendering`` has, or a word within ``threshold`` of each.

    1.0 when ``text`` has no content words. A rendering of a sentence covers it; a piece of it
    ("Sie sind sich sicher, dass Sie derjenige sind …" from a sentence whose main clause calls
    that attitude pushy) does not.
    """
    n = len(content_words(text))
    return 1.0 if n == 0 else min(1.0, float(matcher.scores(text, [rendering], threshold)[0]) / n)
