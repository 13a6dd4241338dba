"""Answers: evidence first, then the model's words, each checked; else verbatim quotes.

What runs for a question that retrieval did not abstain on:

1. :func:`advisor.extractive.select_evidence` picks up to three sentences
   from the retrieved passages (a key point; when; how; a caveat). Every
   answer, model-written or not, rests on exactly these sentences, and each
   is one citation: ``citations[i]`` is its passage, ``quotes[i]`` the
   sentence, verbatim, with document offsets.
2. With a model, each quote in another language than the question's is
   translated and checked (:mod:`advisor.translation`), through English when
   neither language is English; a translation that fails a check is not
   shown, and the quote stays verbatim.
3. The model is asked, under a grammar, whether the evidence answers the
   question (``COVERED: yes/no``) and for one direct answer sentence in the
   asker's language ending in the number(s) of the evidence it rests on.
4. That sentence is shown only if it passes every check against the evidence
   it cites: it renders that evidence rather than composing (embedding cosine
   and the share of the evidence's words it renders), then
   :func:`advisor.faithfulness.check_claim` and the citation verifier's
   embedding check. Then the answer's mode is ``llm``.
5. Otherwise (no model, the model said the evidence does not answer, or the
   sentence failed a check) the answer is extractive: the same quotes,
   framed in the asker's language, with the same checked translations.

A wrong answer that looks sourced is worse than no answer: everything the
model writes is either checked and shown or dropped, and the notes say which.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial

from advisor.chunking import split_sentences
from advisor.citations import MARKER_RE, marker_numbers, unsafe_model_text, verify
from advisor.embedders import Embedder
from advisor.extractive import Pick, extractive_answer, select_evidence
from advisor.faithfulness import JUDGE_THRESHOLD, check_claim
from advisor.generation import Generator, TokenSink
from advisor.lang import detect_language
from advisor.prompts import Message, answer_grammar, answer_messages
from advisor.retrieval import Retrieval
from advisor.translation import PIVOT, Translated, TranslationCache, pivots, translate
from advisor.types import Answer, Passage, Sentence

__all__ = [
    "ABSTAIN",
    "ANSWER_TOKENS",
    "AnswerOptions",
    "abstain_text",
    "answer_prompt",
    "build_answer",
    "context_before",
    "parse_reply",
]

ABSTAIN = {
    "en": "The advisor's documents do not cover this question, so it will not guess. They cover: {topics}.",
    "es": "Los documentos del asesor no tratan esta pregunta, así que no va a adivinar. Tratan: {topics}.",
    "de": "Die Dokumente des Beraters behandeln diese Frage nicht, daher rät er nicht. Sie behandeln: {topics}.",
}
ANSWER_TOKENS = 96  # the direct answer: "COVERED: yes", one sentence and its markers


def abstain_text(lang: str, topics: Sequence[str]) -> str:
    """The abstention message in ``lang``, naming what the documents do cover."""
    return ABSTAIN.get(lang, ABSTAIN["en"]).format(topics="; ".join(f"“{t}”" for t in topics))


@dataclass
class AnswerOptions:
    """What an answer needs besides the retrieval: the parts that may load lazily, and limits."""

    embedder: Embedder
    topics: Callable[[], list[str]]
    generator: Callable[[], Generator] | None = None  # None: extractive (no model)
    translations: TranslationCache | None = None
    translate: bool = True  # translate quotes in another language (with a model)
    english_fallback: bool = True  # a refused translation's checked English one is shown instead
    round_trip: bool = False  # a translation must also survive being translated back (see advisor.translation)
    in_context: bool = False  # also translate with the sentences before the quote shown (see advisor.translation)
    judge_threshold: float = JUDGE_THRESHOLD
    # the share of the cited evidence's words an answer sentence renders (see advisor.wordmatch.covered_share);
    # None: not measured (an embedder with no calibrated word threshold)
    coverage: Callable[[str, str], float] | None = None
    max_tokens: int = ANSWER_TOKENS
    timeout: float = 120.0
    on_token: TokenSink | None = None


@dataclass
class _Work:
    """What a step of an answer reports besides its result: its timings and notes.

    Each step makes its own and returns it; :func:`build_answer` adds them up.
    """

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tokens: tuple[int, int] = (0, 0)  # the direct-answer request's prompt and completion tokens

    def add(self, other: _Work) -> None:
        for key, value in other.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        self.notes.extend(other.notes)
        self.tokens = (self.tokens[0] + other.tokens[0], self.tokens[1] + other.tokens[1])


_REPLY = re.compile(r"^COVERED:\s*(?P<covered>yes|no)\s*(?:\nANSWER:\s*(?P<answer>.+))?\s*$", re.DOTALL)


def parse_reply(text: str) -> tuple[bool | None, str]:
    """``(covered, answer sentence)`` from the model's reply; ``(None, "")`` if it is malformed."""
    match = _REPLY.match(text.strip())
    if not match:
        return None, ""
    return match.group("covered") == "yes", " ".join((match.group("answer") or "").split())


def _timed(work: _Work, key: str, t0: float) -> None:
    work.timings[key] = work.timings.get(key, 0.0) + (time.perf_counter() - t0) * 1000


def _translate_quotes(
    gen: Generator, lang: str, cites: Sequence[Passage], quotes: Sequence[Sentence], opts: AnswerOptions
) -> tuple[list[str | None], list[str | None], _Work]:
    """Each quote's checked translation into ``lang``, and its checked English one where that was refused.

    ``(translations, english, work)``: ``translations[i]`` is None for a quote in ``lang`` or one
    whose translation failed a check; ``english[i]`` is then the quote's checked English
    translation when ``lang`` is not English and ``opts.english_fallback`` is on (a Spanish or
    German asker who gets no translation into their language can often read English; the English
    step of a translation through English is cached, so this costs nothing), else None.
    """
    t0 = time.perf_counter()
    work = _Work()
    out: list[str | None] = []
    english: list[str | None] = []
    refused = 0
    for passage, quote in zip(cites, quotes, strict=True):
        english.append(None)
        if passage.lang == lang or not opts.translate:
            out.append(None)
            continue
        # the English step, made at most once per quote: the route to ``lang`` and the fallback share it
        context = context_before(passage, quote) if opts.in_context else ""
        english_step = cache(partial(_english, gen, quote.text, passage.lang, opts, context))
        out.append(_translation(gen, quote.text, passage.lang, lang, opts, english_step, context).text)
        if out[-1] is None:
            refused += 1
            if opts.english_fallback and pivots(passage.lang, lang):
                english[-1] = english_step()
    if refused:
        work.notes.append(f"{refused} machine translation(s) failed a check against their quote and are not shown")
    instead = sum(e is not None for e in english)
    if instead:
        work.notes.append(f"{instead} of them shown as their checked English translation instead")
    _timed(work, "translate_ms", t0)
    return out, english, work


def context_before(passage: Passage, quote: Sentence, sentences: int = 2) -> str:
    """The ``sentences`` sentences before ``quote`` in its passage (the context its translation is shown)."""
    head = passage.text[: max(0, quote.start - passage.start)]
    return " ".join(s.text for s in split_sentences(head)[-sentences:])


def _english(gen: Generator, quote: str, quote_lang: str, opts: AnswerOptions, context: str = "") -> str | None:
    """``quote``'s checked English translation, or None."""
    return _translation(gen, quote, quote_lang, PIVOT, opts, context=context).text


def _translation(
    gen: Generator,
    quote: str,
    quote_lang: str,
    lang: str,
    opts: AnswerOptions,
    english: Callable[[], str | None] | None = None,
    context: str = "",
) -> Translated:
    """``quote`` translated into ``lang`` and checked, from the cache when it holds a verdict.

    Between two languages neither of which is English, the model translates from the quote's
    checked English translation (``english()``; by default from the cache, or made and kept
    there: English askers share it); the English step runs only when ``lang`` has no verdict yet.
    ``context``: the sentences before the quote (see :func:`advisor.translation.translate`).
    """
    done = opts.translations.get(quote, lang) if opts.translations else None
    if done is None:
        via = None
        if pivots(quote_lang, lang):
            via = english() if english is not None else _english(gen, quote, quote_lang, opts, context)
        sink = opts.on_token  # what the model writes streams as it is written, translations too
        done = translate(
            gen,
            opts.embedder,
            quote,
            quote_lang,
            lang,
            timeout=opts.timeout,
            on_token=sink,
            via=via,
            round_trip=opts.round_trip,
            context=context,
        )
        if sink is not None:
            sink("\n")
        if opts.translations is not None and not done.stopped:
            opts.translations.put(quote, lang, done.text)
    return done


def answer_prompt(question: str, lang: str, shown: Sequence[str]) -> tuple[list[Message], str]:
    """The messages and grammar of the direct-answer request over the evidence texts ``shown`` ([1] first)."""
    return answer_messages(question, lang, shown), answer_grammar(len(shown))


def _direct_answer(
    gen: Generator,
    found: Retrieval,
    cites: Sequence[Passage],
    quotes: Sequence[Sentence],
    translations: Sequence[str | None],
    opts: AnswerOptions,
) -> tuple[bool | None, str, _Work]:
    """The model's coverage verdict and its direct answer sentence (if that passes every check)."""
    work = _Work()
    # the model reads each quote in the asker's language where a checked translation exists
    shown = [t or q.text for q, t in zip(quotes, translations, strict=True)]
    t0 = time.perf_counter()
    messages, grammar = answer_prompt(found.question, found.lang, shown)
    reply = gen.chat(messages, opts.max_tokens, on_token=opts.on_token, timeout=opts.timeout, grammar=grammar)
    work.timings.update(prefill_ms=reply.prefill_ms, generate_ms=reply.generate_ms)
    work.tokens = (reply.prompt_tokens, reply.completion_tokens)
    _timed(work, "draft_ms", t0)
    if reply.finish == "timeout":
        work.notes.append(f"generation stopped at the {opts.timeout:.0f} s deadline")
        return None, "", work
    covered, sentence = parse_reply(reply.text)
    if covered is None:
        work.notes.append("the model's reply was malformed")
        return None, "", work
    if not covered or not sentence:
        return covered, "", work
    t1 = time.perf_counter()
    numbers = sorted({n for n in marker_numbers(sentence) if 1 <= n <= len(shown)})
    bare = _without_verdict(MARKER_RE.sub("", sentence).strip())
    evidence = [(shown[n - 1], found.lang if translations[n - 1] else cites[n - 1].lang) for n in numbers]
    quoted = [q.text for q in quotes] + [t for t in translations if t]
    problem = unsafe_model_text(bare, quoted) or _check_sentence(gen, bare, found.lang, evidence, shown[0], opts)
    _timed(work, "check_ms", t0=t1)
    if problem:
        work.notes.append(f"the model's answer sentence was not shown: {problem}")
        return covered, "", work
    if detect_language(bare, default=found.lang) != found.lang:
        work.notes.append(f"the model's answer sentence was not in the question's language ({found.lang})")
        return covered, "", work
    return covered, f"{bare} " + "".join(f"[{n}]" for n in numbers), work


# "Yes," / "No," before an answer: a verdict on the question that no check can hold against the
# evidence (the evidence answers the situation, not the asker's yes/no); it is dropped, and the
# rest of the sentence is checked.
_VERDICT = re.compile(r"^(?:yes|no|sí|si|ja|nein|nope|yeah)\s*[,.;:!—–-]\s*", re.IGNORECASE)
CLOSE_TO_EVIDENCE = 0.7  # cosine the answer sentence must reach with the evidence it cites, in its language
# ... and the share of the evidence's content words it must render: measured on the held-out and shipped
# runs' model-written answers (docs/answers.md), every faithful one renders 0.67 or more; the one that
# rendered a clause and dropped the main one, contradicting its article, 0.52
COVERS_EVIDENCE = 0.6


def _without_verdict(sentence: str) -> str:
    rest = _VERDICT.sub("", sentence, count=1)
    return rest[:1].upper() + rest[1:] if rest != sentence else sentence


def _check_sentence(
    gen: Generator, sentence: str, lang: str, evidence: Sequence[tuple[str, str]], key_point: str, opts: AnswerOptions
) -> str:
    """Why ``sentence`` may not be shown as resting on ``evidence`` (text, language), or ""."""
    if not evidence:
        return "it cites no evidence"
    if evidence[0][0] != key_point:  # the grammar asks for [1]; a server without grammars may not
        return "it does not rest on the key point (evidence [1])"
    if any(source_lang != lang for _, source_lang in evidence):
        return "it rests on a quote that has no checked translation into the question's language"
    source = " ".join(text for text, _ in evidence)
    source_lang = evidence[0][1]
    vectors = opts.embedder.embed_documents([sentence, source])
    closeness = float(vectors[0] @ vectors[1])
    if closeness < CLOSE_TO_EVIDENCE:  # the model composed rather than rendered what it cites
        return f"it says more or other than the evidence it cites (similarity {closeness:.2f})"
    share = opts.coverage(source, sentence) if opts.coverage is not None else 1.0
    if share < COVERS_EVIDENCE:  # a piece of the evidence can leave out what the evidence is about
        return f"it renders only part of the evidence it cites ({share:.0%} of its words)"
    verdict = check_claim(gen, source, source_lang, sentence, lang, opts.judge_threshold)
    if not verdict.ok:
        return "; ".join(verdict.reasons)
    return ""


def build_answer(found: Retrieval, opts: AnswerOptions) -> Answer:
    """The answer to ``found`` (see the module docstring for what runs)."""
    t_start = time.perf_counter() - found.timings.get("retrieve_ms", 0.0) / 1000
    work = _Work(timings=dict(found.timings))

    def finish(**fields: object) -> Answer:
        work.timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        return Answer(
            question=found.question,
            retrieved=found.passages,
            lang=found.lang,
            timings=work.timings,
            notes=work.notes,
            prompt_tokens=work.tokens[0],
            completion_tokens=work.tokens[1],
            **fields,  # type: ignore[arg-type]
        )

    if found.abstain:
        work.notes.append(found.reason)
        return finish(text=abstain_text(found.lang, opts.topics()), mode="abstain", citations=[])
    t0 = time.perf_counter()
    picks: list[Pick] = select_evidence(found.question, found.passages, opts.embedder)
    cites = [found.passages[p.index] for p in picks]
    quotes = [p.sentence for p in picks]
    _timed(work, "select_ms", t0)
    if not picks:
        return finish(text=abstain_text(found.lang, opts.topics()), mode="abstain", citations=[])
    translations: list[str | None] = [None] * len(picks)
    english: list[str | None] = [None] * len(picks)
    sentence = ""
    if opts.generator is not None:
        gen = opts.generator()
        translations, english, step = _translate_quotes(gen, found.lang, cites, quotes, opts)
        work.add(step)
        covered, sentence, step = _direct_answer(gen, found, cites, quotes, translations, opts)
        work.add(step)
        if covered is False:
            work.notes.append("the model found that the quoted evidence does not answer the question")
    glosses = {"translations": translations, "english": english}  # beneath each quote, whatever the mode
    if sentence:
        # what is shown, measured again by the citation verifier (embedding support per sentence)
        grounded = verify(sentence, cites, opts.embedder).groundedness
        if grounded == 1.0:
            return finish(text=sentence, mode="llm", citations=cites, quotes=quotes, groundedness=grounded, **glosses)
        work.notes.append("the model's answer sentence was not shown: its cited quote does not support it")
    if opts.generator is not None:
        work.notes.append("showing the quoted evidence instead (extractive answer)")
    text, cites, quotes = extractive_answer(found.lang, found.passages, picks)
    grounded = verify(text.split("\n", 1)[-1], cites, opts.embedder).groundedness
    return finish(text=text, mode="extractive", citations=cites, quotes=quotes, groundedness=grounded, **glosses)
