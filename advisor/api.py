"""The Python API: :class:`Advisor` ties the stages together.

Models load lazily on first use and stay loaded for the life of the object, so
a program (or ``advisor eval`` / ``advisor chat``) pays for them once.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.answering import AnswerOptions, build_answer
from advisor.embedders import Embedder, SentenceMemo, make_embedder
from advisor.errors import AdvisorError, DocumentError, InputError, StoreError, StoreLockedError
from advisor.generation import GENERATORS, Generator, make_generator
from advisor.ingest import (
    Progress,
    bundle_key,
    bundled_corpus,
    ingest_paths,
    remove_documents,
    source_changes,
    stale_bundled_files,
    stored_documents,
)
from advisor.rerank import Reranker, make_reranker
from advisor.retrieval import Retrieval, Retriever, word_threshold
from advisor.safety import MAX_QUESTION_CHARS, clean_question
from advisor.settings import MAX_K, Settings, load_settings
from advisor.store import ChromaStore, Store
from advisor.translation import TranslationCache
from advisor.types import Answer, DocumentInfo, IngestReport, Passage, embedding_text
from advisor.wordmatch import WORD_THRESHOLDS, WordMatcher, covered_share

if TYPE_CHECKING:
    from advisor.evaluation import EvalReport, Scenario

__all__ = ["LOCK_WAIT", "MAX_K", "MAX_QUESTION_CHARS", "Advisor"]

ANSWER_CACHE_SIZE = 128
LOCK_WAIT = 1.5  # seconds a second writer waits for the store lock before giving up


def _path_list(value: Any, verb: str, what: str) -> list[str | os.PathLike[str]]:
    """A path, or a sequence of paths, as a list; anything else is an InputError naming ``verb`` and ``what``."""
    if isinstance(value, str | os.PathLike):
        value = [value]
    if not isinstance(value, Sequence | set | frozenset):
        raise InputError(f"{verb} takes a path or a list of paths, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise InputError(f"{verb} takes paths (text), not {item!r}")
        if not str(item).strip():  # Path("") is the current folder: never what was meant
            raise InputError(f"an empty name was given to {verb}; name {what}")
    return items


def check_timeout(timeout: Any) -> float | None:
    """``timeout`` if it is None or a positive number of seconds, else :class:`InputError`."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise InputError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


class Advisor:
    """Ingest documents, retrieve passages and answer questions with citations.

    >>> adv = Advisor(home="path/to/data")          # doctest: +SKIP
    >>> adv.ingest(["corpus"]).added                # doctest: +SKIP
    >>> adv.ask("When should I ask my contact?")    # doctest: +SKIP
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        settings: Settings | None = None,
        *,
        embedder: Embedder | str | None = None,
        generator: Generator | str | None = None,
        reranker: Reranker | str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(embedder, str):  # a name, as in settings: Advisor(embedder="e5-small")
            overrides["embedder"], embedder = embedder, None
        if isinstance(reranker, str):  # a name, as in settings: Advisor(reranker="st-cross:...")
            overrides["reranker"], reranker = reranker, None
        self._generator_name: str | None = None
        if isinstance(generator, str):  # a registered name: Advisor(generator="llama-cpp"); made on first use
            GENERATORS.find(generator)  # an unknown name fails here, in one line naming the choices
            self._generator_name, generator = generator, None
        if home is not None and not isinstance(home, str | os.PathLike):
            raise InputError(f"home must be a path, not {type(home).__name__}")
        if settings is None:
            settings = load_settings(home=Path(home) if home is not None else None, **overrides)
        elif home is not None or overrides:
            merged = {**settings.model_dump(), **overrides}
            if home is not None:
                merged["home"] = Path(home)
            settings = load_settings(**merged)
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._reranker = reranker
        self._reranker_loaded = reranker is not None
        self._store: Store | None = None
        self._retriever: Retriever | None = None
        self._words: WordMatcher | None = None
        self._answers: dict[tuple[Any, ...], Answer] = {}
        self._bundle_checked = False  # see _ensure_corpus
        self._topics: tuple[tuple[int, int], list[str]] | None = None
        self._translations: TranslationCache | None = None
        self._model_progress: Callable[[int, int], None] | None = None
        # components load once even when threads share this advisor (two Chroma clients
        # opened at once fail; two models would load)
        self._loading = threading.RLock()

    # -- components, loaded on first use ---------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._loading:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings.embedder, self.settings.n_threads)
        return self._embedder

    @property
    def store(self) -> Store:
        with self._loading:
            if self._store is None:
                s, e = self.settings, self.embedder
                self._store = ChromaStore(s.store_dir, s.collection, e.name, e.dim, url=s.chroma_url)
        return self._store

    @property
    def words(self) -> WordMatcher:
        """Word vectors for cross-lingual word matching, cached beside the store."""
        with self._loading:
            if self._words is None:
                slug = re.sub(r"[^\w.-]+", "_", self.embedder.name)
                self._words = WordMatcher(self.embedder, self.settings.home / "words" / f"{slug}.npz")
        return self._words

    @property
    def reranker(self) -> Reranker | None:
        """The configured cross-encoder (``settings.reranker``), or None when reranking is off."""
        with self._loading:
            if not self._reranker_loaded:
                self._reranker = make_reranker(self.settings)
                self._reranker_loaded = True
        return self._reranker

    @property
    def retriever(self) -> Retriever:
        with self._loading:
            if self._retriever is None:
                self._retriever = Retriever(self.store, self.embedder, self.settings, self.words, self.reranker)
        return self._retriever

    @property
    def generator(self) -> Generator:
        with self._loading:
            if self._generator is None:
                self._generator = make_generator(self.settings, self._generator_name, self._model_progress)
        return self._generator

    @property
    def _texts(self) -> Path:
        """Where converted files' (PDF, HTML, Word) extracted texts are kept; citations point into them."""
        return self.settings.home / "texts" / self.settings.collection

    # -- ingest -----------------------------------------------------------
    def _lock(self) -> Any:
        from filelock import FileLock

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.settings.home / ".advisor.lock"))

    def _unwritable(self, exc: OSError) -> StoreError:
        reason = exc.strerror or type(exc).__name__
        return StoreError(
            f"cannot write to the data directory {self.settings.home} ({reason}); "
            "pass --home or set ADVISOR_HOME to a writable folder"
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's write lock (one writer at a time), or fail in one line."""
        from filelock import Timeout

        pid_file = self.settings.home / ".advisor.lock.pid"
        try:
            lock = self._lock()
            lock.acquire(timeout=LOCK_WAIT)
        except Timeout:
            holder = pid_file.read_text().strip() if pid_file.exists() else "unknown"
            raise StoreLockedError(
                f"another advisor process (pid {holder}) is writing the store in {self.settings.home}; "
                "wait for it to finish and try again"
            ) from None
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            try:
                pid_file.write_text(str(os.getpid()))
            except OSError as exc:
                raise self._unwritable(exc) from None
            yield
        finally:
            pid_file.unlink(missing_ok=True)
            lock.release()

    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
        reindex: bool = False,
    ) -> IngestReport:
        """Sync the store with ``paths`` (default: settings.corpus, else the bundled corpus).

        ``paths``: a path or a list of paths (files or folders).
        """
        given = _path_list(paths, "ingest", "a file or folder") if paths is not None else []
        targets = [Path(p) for p in given] if given else (list(self.settings.corpus) or [bundled_corpus()])
        for target in targets:  # fail fast, before any model loads
            if not target.expanduser().exists():
                raise DocumentError(f"no such file or directory: {target}; check the path to ingest")
        with self._locked():
            if reindex:
                s = self.settings
                self._store = ChromaStore(
                    s.store_dir, s.collection, self.embedder.name, self.embedder.dim, url=s.chroma_url, reset=True
                )
                self._retriever = None
            # word vectors are learnt while chunks are embedded, so asking never has to
            words = self.words if word_threshold(self.settings, self.embedder) is not None else None
            report = ingest_paths(
                self.store,
                self.embedder,
                targets,
                self.settings.chunk_tokens,
                batch=self.settings.embed_batch,
                progress=progress,
                words=words,
                texts=self._texts,
            )
            if words is not None:
                if words.missing:  # a store from before word matching, or an unreadable cache
                    words.learn(embedding_text(c.text, str(c.meta.get("context", ""))) for c in self.store.all_chunks())
                try:
                    words.save()
                except OSError as exc:  # the chunks are stored; the word cache is rebuilt on the next ingest
                    raise self._unwritable(exc) from None
            return report

    def documents(self) -> list[DocumentInfo]:
        """What the store holds, one row per document (nothing is ingested by asking)."""
        return stored_documents(self.store)

    def remove(self, targets: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> IngestReport:
        """Forget stored documents by source id, file path or folder; the files are not touched.

        All or nothing: a target that matches no stored document raises
        :class:`DocumentError` before anything is deleted. Ingesting the file
        again brings it back.
        """
        names = [str(t) for t in _path_list(targets, "remove", "a source id or path from advisor sources")]
        if not names:
            raise InputError("name what to remove: a source id or path from advisor sources")
        with self._locked():
            return remove_documents(self.store, names, self._texts)

    def _ensure_corpus(self) -> None:
        """First use: an empty store is filled with the default corpus.

        Once per advisor, the bundled articles are also followed to this
        install: a store filled by another install (an old virtualenv) or an
        older corpus is brought to this install's copies, so that citations
        name files that exist and hold the quoted text.
        """
        with self._loading:  # two threads asking at once ingest it once
            if self.store.count() == 0:
                self.ingest()
            if self._bundle_checked:
                return
            self._bundle_checked = True
            self._follow_bundle()

    def _follow_bundle(self) -> None:
        marker = self.settings.home / "bundled-corpus"
        try:
            key = bundle_key()
            if not key or (marker.is_file() and marker.read_text(encoding="utf-8") == key):
                return
        except OSError:
            return
        try:
            stale = stale_bundled_files(self.store)
            if stale:
                self.ingest(stale)
            marker.write_text(key, encoding="utf-8")
        except (AdvisorError, OSError):
            pass  # a read-only or busy home: the stored copies still answer, and notes say they moved

    # -- retrieve ---------------------------------------------------------
    @staticmethod
    def _check_question(question: str) -> str:
        if not isinstance(question, str):
            raise InputError(f"the question must be text (str), not {type(question).__name__}")
        q = clean_question(question)
        if not q:
            raise InputError('the question is empty; ask something, e.g. advisor ask "When should I ask my contact?"')
        if len(q) > MAX_QUESTION_CHARS:
            raise InputError(
                f"the question is {len(q)} characters long; keep it under {MAX_QUESTION_CHARS} "
                "(ask about one situation at a time)"
            )
        return q

    def check_question(self, question: str, k: int | None = None, timeout: float | None = None) -> None:
        """Raise :class:`InputError` for what :meth:`ask` would refuse, before anything loads."""
        self._check_question(question)
        self._check_k(k)
        check_timeout(timeout)

    @staticmethod
    def _check_k(k: Any) -> None:
        if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
            raise InputError(f"k must be a whole number between 1 and {MAX_K}, not {k!r}")
        if k is not None and not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, not {k}")

    def search(self, question: str, k: int | None = None, history: Sequence[str] | None = None) -> Retrieval:
        """Retrieval with its signals, abstention decision and timings.

        ``history`` holds earlier questions of a conversation; the last one is
        added to the search query so that follow-ups ("and after that?") work.
        """
        q = self._check_question(question)
        self._check_k(k)
        _ = self.reranker  # a bad reranker fails before the first ingest, not after
        self._ensure_corpus()
        context = " ".join(str(history[-1]).split())[:MAX_QUESTION_CHARS] if history else ""
        return self.retriever.retrieve(q, k, context=context)

    def retrieve(self, question: str, k: int | None = None) -> list[Passage]:
        """The top-``k`` passages for ``question``, best first."""
        return self.search(question, k).passages

    # -- answer -----------------------------------------------------------
    def topics(self) -> list[str]:
        """Titles of the stored documents (at most 8), read once per store version."""
        key = (self.store.version(), self.store.count())
        if self._topics is None or self._topics[0] != key:
            titles = sorted({str(m.get("title", "")) for _, m in self.store.metadata_index()})
            self._topics = (key, [t for t in titles if t][:8])
        return list(self._topics[1])

    def ask(
        self,
        question: str,
        k: int | None = None,
        llm: bool = True,
        *,
        on_token: Callable[[str], None] | None = None,
        timeout: float | None = None,
        history: Sequence[str] | None = None,
    ) -> Answer:
        """Answer ``question`` with cited passages (``llm=False``: extractive, no model)."""
        check_timeout(timeout)
        found = self.search(question, k, history=history)
        # Deterministic generation (temperature 0) over the same passages gives the same
        # answer: repeated questions (chat, eval re-runs, scripts) are served from a cache.
        key = (
            found.question,
            tuple(p.chunk_id for p in found.passages),
            found.abstain,
            llm,
            self.settings.model_dump_json(),
        )
        cacheable = self.settings.temperature == 0 and on_token is None
        if cacheable and key in self._answers:
            answer = copy.deepcopy(self._answers[key])
            answer.notes = [*answer.notes, "answer served from the cache"]
        else:
            answer = self.answer(found, llm=llm, on_token=on_token, timeout=timeout)
            if cacheable and answer.notes == [n for n in answer.notes if "deadline" not in n]:
                self._answers[key] = copy.deepcopy(answer)
                while len(self._answers) > ANSWER_CACHE_SIZE:
                    self._answers.pop(next(iter(self._answers)))
        # checked on every call, cached or not: files change between questions
        answer.notes.extend(source_changes(answer.citations))
        return answer

    def answer(
        self,
        found: Retrieval,
        llm: bool = True,
        *,
        on_token: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Answer from an earlier :meth:`search` (so retrieval is not run twice); see :mod:`advisor.answering`."""
        options = AnswerOptions(
            embedder=SentenceMemo(self.embedder),  # quote sentences are embedded once per answer
            topics=self.topics,
            generator=(lambda: self.generator) if llm else None,
            translations=self.translations if llm else None,
            translate=self.settings.gloss,
            english_fallback=self.settings.english_fallback,
            round_trip=self.settings.translation_round_trip,
            in_context=self.settings.translation_context,
            coverage=self._coverage(),
            timeout=check_timeout(timeout) or self.settings.timeout,
            max_tokens=self.settings.max_tokens,
            on_token=on_token,
        )
        return build_answer(found, options)

    def _coverage(self) -> Callable[[str, str], float] | None:
        """How much of a text a rendering covers, word by word (None: no word threshold for this embedder)."""
        threshold = self.settings.word_threshold
        if threshold is None:
            threshold = WORD_THRESHOLDS.get(self.embedder.name)
        return None if threshold is None else partial(covered_share, self.words, threshold)

    def prepare_model(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Load the model now (assembling the default one first, reporting ``progress(bytes, total)``)."""
        self._model_progress = progress
        try:
            _ = self.generator
        finally:
            self._model_progress = None

    @property
    def translations(self) -> TranslationCache:
        """Checked translations of quotes, cached per model under ``home/translations``."""
        with self._loading:
            if self._translations is None:
                # verdicts with and without the round trip or the in-context translation differ: each kept apart
                checks = "+round-trip" if self.settings.translation_round_trip else ""
                checks += "+context" if self.settings.translation_context else ""
                self._translations = TranslationCache(self.settings.home / "translations", self.generator.name + checks)
        return self._translations

    # -- evaluate ---------------------------------------------------------
    def evaluate(
        self,
        scenarios: Sequence[Scenario] | str | os.PathLike[str],
        *,
        retrieval_only: bool = False,
        llm: bool = True,
        progress: Callable[[int, int], None] | None = None,
        concurrency: int = 1,
    ) -> EvalReport:
        """Run scenarios (a list, or a .yaml/.jsonl path) through this advisor; see README metrics."""
        from advisor.evaluation import load_scenarios, run_evaluation

        items = load_scenarios(Path(scenarios)) if isinstance(scenarios, str | os.PathLike) else list(scenarios)
        return run_evaluation(
            self, items, retrieval_only=retrieval_only, llm=llm, progress=progress, concurrency=concurrency
        )

    def __enter__(self) -> Advisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release models and the store (they are also released with the object).

        The advisor stays usable: the next call loads what it needs again.
        ``with Advisor(...) as adv:`` closes it at the end of the block.
        """
        self._generator = None
        self._retriever = None
        self._store = None
