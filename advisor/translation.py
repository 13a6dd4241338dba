"""Checked translations of quoted sentences into the asker's language.

A quote stays verbatim; when it is in another language than the question, the
model translates it (one sentence, no comments) and the translation is shown
beneath it, labelled as a machine translation, only if it passes every check:

* it is one plain sentence in the question's language, with no marker, link
  or instruction, of a plausible length;
* it says what the quote says: cross-lingual embedding similarity (the topic),
  :func:`advisor.faithfulness.lexical_conflicts` (negations, numbers, before /
  after, time units, comparisons, order, frequency) and the model's own strict
  yes/no check of the pair (:func:`advisor.faithfulness.model_check`);
* the model was sure of every word of it: no token of the translation, read back
  as the model's own reply to the request, has a probability below
  :data:`CONFIDENCE_FLOOR` (:func:`translation_confidence`). A small model that
  does not know a word ("aufdringlich") still writes one, greedily, but with
  less confidence than the words it knows;
* optionally (``Settings.translation_round_trip``), it survives the round trip:
  translated back into the quote's language by the same model, it reads like the
  quote again (:func:`chrf` at least :data:`ROUND_TRIP_FLOOR`). A fluent
  translation that changed a word or a role ("what she knows about" for "how well
  she knows") tends to come back further from the quote than a faithful one.

Optionally (``Settings.translation_context``), the model translates the quote twice: alone, and
with the sentences before it in its passage shown as context ("do not translate"). A phrase the
sentence alone leaves open ("dejar caer las palabras", put in a good word) or who is who is often
right only in context, and the model sometimes translates the context instead; of the candidates
that pass every check, the one the model's strict check scores higher is kept. The check is not
calibrated enough to judge a translation alone, but it ranks two renderings of the same quote well
(measured in docs/answers.md).

Between two languages neither of which is English (a Spanish quote for a German
asker), the quote is translated into English first and that checked English
translation into the asker's language (:func:`pivots`); the result is checked
against the quote itself.

Evidence sentences come from a fixed set of documents and recur across
questions, so each verdict (a translation, or a refusal) is kept in a small
JSON cache per model and language under ``$ADVISOR_HOME/translations``: the
second question that quotes a sentence pays nothing for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from advisor.citations import MARKER_RE, unsafe_model_text
from advisor.embedders import Embedder
from advisor.faithfulness import TRANSLATION_THRESHOLD, check_claim
from advisor.generation import Generation, Generator, TokenSink
from advisor.lang import detect_language, words
from advisor.prompts import Message, translate_in_context_messages, translate_messages

__all__ = [
    "CONFIDENCE_FLOOR",
    "PIVOT",
    "ROUND_TRIP_FLOOR",
    "TRANSLATION_SUPPORT",
    "Translated",
    "TranslationCache",
    "check_translation",
    "chrf",
    "lowest_probability",
    "pivots",
    "plain_translation",
    "translate",
    "translate_back",
    "translation_confidence",
    "translation_logprobs",
]

TRANSLATION_SUPPORT = 0.6  # cosine a translation must reach with the sentence it translates
CACHE_VERSION = "4"  # bump when the prompt or the checks change: old verdicts are then ignored
PIVOT = "en"
# The lowest probability the model may have given a token of its own translation. Measured with
# scripts/translation_confidence.py on tests/data/translations.yaml (translations the advisor showed,
# each labelled by reading it against its quote): see docs/answers.md.
CONFIDENCE_FLOOR = 0.1
# The chrF a translation's back-translation must reach against the quote (with the round trip on).
# Chosen on the held-out items of tests/data/translations.yaml with
# scripts/translation_confidence.py --round-trip: see docs/answers.md.
ROUND_TRIP_FLOOR = 0.54


def _char_ngrams(text: str, n: int) -> Counter[str]:
    flat = " ".join(text.lower().split())
    return Counter(flat[i : i + n] for i in range(len(flat) - n + 1))


def chrf(hypothesis: str, reference: str, max_n: int = 6, beta: float = 2.0) -> float:
    """chrF: the F-score (recall weighted ``beta``) of character n-grams, n = 1..max_n, averaged."""
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        hyp, ref = _char_ngrams(hypothesis, n), _char_ngrams(reference, n)
        common = sum((hyp & ref).values())
        precisions.append(common / max(1, sum(hyp.values())))
        recalls.append(common / max(1, sum(ref.values())))
    p, r = sum(precisions) / max_n, sum(recalls) / max_n
    return 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)


def pivots(quote_lang: str, lang: str) -> bool:
    """Whether a quote is translated through English: when neither language is English.

    A small model translates into and out of English far better than between two other
    languages (Qwen2.5-Coder-1.5B, Spanish to German: "gerente de contratación" became
    "Vertragsmanager", "candidatos" "Anwälte", Spanish words were left in the German;
    through English: "Personalverantwortliche", "Kandidaten"; read in docs/answers.md).
    """
    return PIVOT not in {quote_lang, lang} and quote_lang != lang


@dataclass(frozen=True)
class Translated:
    """A translation that passed its checks (``text``), or why there is none (``reason``).

    ``stopped``: the model's request was cut short (a deadline, or the reader went away), so
    there is no verdict on the quote: nothing is cached and no further request is made.
    """

    text: str | None
    reason: str = ""
    cached: bool = False
    stopped: bool = False


def plain_translation(reply: str, quote: str, lang: str, embedder: Embedder) -> tuple[str | None, str]:
    """The model's reply as a showable translation of ``quote``, or None and why not."""
    lines = [ln.strip() for ln in reply.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return None, "not one line"
    text = lines[0].strip(" \"'“”«»")
    n_words, limit = len(words(text)), 2 * len(words(quote)) + 10
    if not 3 <= n_words <= limit:
        return None, "implausible length"
    if MARKER_RE.search(text) or unsafe_model_text(text, [quote]):
        return None, "a link, marker, instruction or code the quote does not have"
    if detect_language(text, default="") != lang:
        return None, "not in the question's language"
    vectors = embedder.embed_documents([text, quote])
    if float(vectors[0] @ vectors[1]) < TRANSLATION_SUPPORT:
        return None, "says something else (embedding similarity)"
    return text, ""


class TranslationCache:
    """Verdicts on translations, one JSON file per model and language, safe for threads."""

    def __init__(self, folder: Path, model: str) -> None:
        self.folder = folder
        self.model = model
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, str | None]] = {}

    def _file(self, lang: str) -> Path:
        slug = hashlib.sha256(self.model.encode("utf-8")).hexdigest()[:16]
        return self.folder / f"{slug}-{lang}.json"

    def _table(self, lang: str) -> dict[str, str | None]:
        if lang not in self._data:
            table: dict[str, str | None] = {}
            with contextlib.suppress(OSError, ValueError):
                raw = json.loads(self._file(lang).read_text(encoding="utf-8"))
                if isinstance(raw, dict) and raw.get("version") == CACHE_VERSION:
                    items = raw.get("items", {})
                    table = {k: v for k, v in items.items() if isinstance(k, str) and (v is None or isinstance(v, str))}
            self._data[lang] = table
        return self._data[lang]

    @staticmethod
    def key(quote: str) -> str:
        return hashlib.sha256(quote.encode("utf-8")).hexdigest()

    def get(self, quote: str, lang: str) -> Translated | None:
        with self._lock:
            table = self._table(lang)
            k = self.key(quote)
            if k not in table:
                return None
            text = table[k]
            return Translated(text, "" if text else "refused earlier", cached=True)

    def put(self, quote: str, lang: str, text: str | None) -> None:
        with self._lock:
            self._table(lang)[self.key(quote)] = text
            path = self._file(lang)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(
                    json.dumps({"version": CACHE_VERSION, "items": self._data[lang]}, ensure_ascii=False),
                    encoding="utf-8",
                )
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only home: translated again next time


def translate(
    generator: Generator,
    embedder: Embedder,
    quote: str,
    quote_lang: str,
    lang: str,
    *,
    timeout: float,
    on_token: TokenSink | None = None,
    via: str | None = None,
    round_trip: bool = False,
    context: str = "",
) -> Translated:
    """Translate ``quote`` into ``lang`` and check the translation (see the module docstring).

    ``via``: a checked English translation of ``quote`` to translate from instead (see
    :func:`pivots`); the result is still checked against ``quote`` itself. ``context``: the
    sentences before the quote in its document; the model then also translates the quote with
    them shown, and of the two translations that pass every check the one the model's strict
    check finds more faithful is kept (the plain one on a tie). ``round_trip``: also translate
    the result back into ``quote_lang`` and refuse it when that no longer reads like ``quote``.
    """
    source = via or quote
    done, p = _candidate(
        generator, embedder, translate_messages(source, lang), source, quote, quote_lang, lang, timeout, on_token
    )
    if context.strip() and via is None and not done.stopped:
        messages = translate_in_context_messages(quote, lang, context)
        other, p_other = _candidate(generator, embedder, messages, quote, quote, quote_lang, lang, timeout, None)
        if other.text is not None and (done.text is None or p_other > p):
            done = other
    if done.text is not None and round_trip:
        back = translate_back(generator, done.text, quote_lang, timeout=timeout)
        if back.finish not in {"stop", "length"}:
            return Translated(None, f"translation {back.finish}", stopped=True)
        score = chrf(back.text.strip(), quote)
        if score < ROUND_TRIP_FLOOR:
            return Translated(None, f"translated back, it no longer reads like the quote (chrF {score:.2f})")
    return done


def _candidate(
    generator: Generator,
    embedder: Embedder,
    messages: list[Message],
    source: str,
    quote: str,
    quote_lang: str,
    lang: str,
    timeout: float,
    on_token: TokenSink | None,
) -> tuple[Translated, float]:
    """The model's reply to one translation request, checked (:func:`check_translation`)."""
    reply = generator.chat(messages, _budget(source), on_token=on_token, timeout=timeout)
    if reply.finish not in {"stop", "length"}:
        return Translated(None, f"translation {reply.finish}", stopped=True), 0.0
    return check_translation(generator, embedder, reply.text, quote, quote_lang, lang, source=source)


def check_translation(
    generator: Generator,
    embedder: Embedder,
    reply: str,
    quote: str,
    quote_lang: str,
    lang: str,
    *,
    source: str | None = None,
) -> tuple[Translated, float]:
    """``reply`` as a translation of ``quote`` into ``lang`` if it passes every check, and the check's score.

    The checks of the module docstring, in order: the plain-translation rules, the lexical
    conflicts and the model's strict check (its probability of "yes" is the score; 0 when
    refused), the confidence floor. ``source``: the text the model translated (a checked English
    translation of ``quote`` when the translation went through English; ``quote`` by default);
    the confidence is read under the plain request for it, as it was measured.
    """
    text, why = plain_translation(reply, quote, lang, embedder)
    if text is None:
        return Translated(None, why), 0.0
    verdict = check_claim(generator, quote, quote_lang, text, lang, TRANSLATION_THRESHOLD)
    if not verdict.ok:
        return Translated(None, "; ".join(verdict.reasons) or "the model's check said no"), 0.0
    sure = translation_confidence(generator, source or quote, lang, text)
    if sure is not None and sure < CONFIDENCE_FLOOR:
        return Translated(None, f"the model was unsure of a word of it (lowest token probability {sure:.2f})"), 0.0
    return Translated(text), verdict.score if math.isfinite(verdict.score) else 0.0


def _budget(text: str) -> int:
    """Tokens a one-sentence translation of ``text`` may take."""
    return 2 * len(words(text)) + 24


def translate_back(generator: Generator, text: str, quote_lang: str, timeout: float = 120.0) -> Generation:
    """The model's translation of its own translation ``text`` back into the quote's language."""
    return generator.chat(translate_messages(text, quote_lang), _budget(text), timeout=timeout)


def translation_logprobs(generator: Generator, source: str, lang: str, text: str) -> list[float] | None:
    """The log-probability of each token of ``text`` as the model's translation of ``source``.

    One forward pass over the translation request and ``text`` (nothing generated). None when
    the generator cannot score (an OpenAI-compatible server).
    """
    return generator.score(translate_messages(source, lang), text)


def lowest_probability(logprobs: list[float]) -> float:
    """The lowest token probability of a reply (1.0 for an empty one)."""
    return math.exp(min(logprobs)) if logprobs else 1.0


def translation_confidence(generator: Generator, source: str, lang: str, text: str) -> float | None:
    """The lowest probability the model gives a token of ``text`` as its translation of ``source``.

    None when the generator cannot score: the check is then skipped.
    """
    logprobs = translation_logprobs(generator, source, lang, text)
    return None if logprobs is None else lowest_probability(logprobs)
