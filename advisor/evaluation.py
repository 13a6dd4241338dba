"""Batch evaluation against scenario files: metrics, reports, regression gates.

A scenario file is YAML (a list of mappings) or JSON Lines (one mapping per
line). Fields: ``id``, ``question``, ``language`` (en/es/de), optional ``tags``,
and what a good answer rests on: ``expect_sources`` (document ids),
``expect_evidence`` (verbatim phrases, any one of which a passage must
contain), or ``expect_abstain: true``. The README defines every metric.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from advisor.citations import MARKER_RE
from advisor.embedders import Embedder
from advisor.errors import InputError, ScenarioError
from advisor.faithfulness import CLAIM_JUDGE, claim_probability, lexical_conflicts
from advisor.lang import LANGUAGES, detect_language, words
from advisor.retrieval import abstain_threshold
from advisor.safety import MAX_QUESTION_CHARS, clean_question, decode_text
from advisor.types import Answer, Passage

if TYPE_CHECKING:
    from advisor.generation import Generator
    from advisor.retrieval import Retrieval
    from advisor.settings import Settings


class Advisor(Protocol):
    """What evaluation needs of an advisor (:class:`advisor.Advisor` is one): no import of the API."""

    settings: Settings

    @property
    def embedder(self) -> Embedder: ...

    def search(self, question: str, k: int | None = None) -> Retrieval: ...

    def answer(self, found: Retrieval, llm: bool = True) -> Answer: ...

    @property
    def generator(self) -> Generator: ...


__all__ = [
    "EvalReport",
    "Scenario",
    "ScenarioResult",
    "check_floors",
    "compare",
    "load_scenarios",
    "parse_floors",
    "run_evaluation",
    "write_reports",
]

KS = (1, 3, 5)
_FIELDS = {
    "id",
    "question",
    "language",
    "tags",
    "expect_sources",
    "expect_evidence",
    "expect_claims",
    "expect_abstain",
    "notes",
}


@dataclass(frozen=True)
class Scenario:
    id: str
    question: str
    language: str
    tags: tuple[str, ...] = ()
    expect_sources: tuple[str, ...] = ()
    expect_evidence: tuple[str, ...] = ()
    expect_abstain: bool = False
    line: int = 0
    expect_claims: tuple[str, ...] = ()  # short statements, in the question's language, a right answer makes

    @property
    def in_scope(self) -> bool:
        return not self.expect_abstain


def _str_list(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ScenarioError(f"{where}: field '{name}' must be a list of non-empty strings")
    return tuple(value)


def _scenario(raw: Any, where: str, line: int) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: each scenario must be a mapping with id, question, language")
    unknown = set(raw) - _FIELDS
    if unknown:  # keys may be any YAML scalar (``1: a``): compared as text
        raise ScenarioError(
            f"{where}: unknown field '{sorted(map(str, unknown))[0]}' (allowed: {', '.join(sorted(_FIELDS))})"
        )
    for name in ("id", "question", "language"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ScenarioError(f"{where}: field '{name}' is missing or empty")
    size = len(clean_question(raw["question"]))  # measured as the advisor measures it
    if size > MAX_QUESTION_CHARS:
        raise ScenarioError(
            f"{where}: the question of scenario {raw['id'].strip()!r} is {size} characters long; "
            f"shorten it to at most {MAX_QUESTION_CHARS} (the advisor refuses longer questions)"
        )
    if raw["language"] not in LANGUAGES:
        raise ScenarioError(f"{where}: field 'language' must be one of {', '.join(LANGUAGES)}, not {raw['language']!r}")
    abstain = raw.get("expect_abstain", False)
    if not isinstance(abstain, bool):
        raise ScenarioError(f"{where}: field 'expect_abstain' must be true or false")
    sources = _str_list(raw.get("expect_sources"), where, "expect_sources")
    evidence = _str_list(raw.get("expect_evidence"), where, "expect_evidence")
    if not abstain and not sources and not evidence:
        raise ScenarioError(f"{where}: give expect_sources and/or expect_evidence, or expect_abstain: true")
    claims = _str_list(raw.get("expect_claims"), where, "expect_claims")
    if abstain and (sources or evidence or claims):
        raise ScenarioError(f"{where}: an expect_abstain scenario cannot also expect sources, evidence or claims")
    return Scenario(
        id=raw["id"].strip(),
        question=raw["question"],
        language=raw["language"],
        tags=_str_list(raw.get("tags"), where, "tags"),
        expect_sources=sources,
        expect_evidence=evidence,
        expect_abstain=abstain,
        line=line,
        expect_claims=claims,
    )


def load_scenarios(path: Path) -> list[Scenario]:
    """Parse a ``.yaml``/``.yml`` or ``.jsonl`` file; errors name the line and field."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read {path}: {exc}") from None
    items: list[Scenario] = []
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
            except RecursionError:
                raise ScenarioError(
                    f"{path}:{n}: the JSON is nested too deeply to read; each line is one mapping "
                    "with id, question, language"
                ) from None
            items.append(_scenario(raw, f"{path}:{n}", n))
    elif path.suffix.lower() in {".yaml", ".yml"}:
        import yaml

        try:
            nodes = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            if mark is not None and mark.line >= len(text.splitlines()) and getattr(exc, "context_mark", None):
                mark = getattr(exc, "context_mark", None)  # at the end of the file: point at what was left open
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
            problem = " ".join(p for p in parts if p) or "invalid YAML"
            raise ScenarioError(f"{where}: {problem}") from None
        except RecursionError:
            raise ScenarioError(
                f"{path}: the YAML is nested too deeply to read; a scenario file is a list of mappings "
                "with id, question, language"
            ) from None
        if not isinstance(data, list):
            raise ScenarioError(f"{path}: expected a list of scenarios at the top level")
        lines = [node.start_mark.line + 1 for node in getattr(nodes, "value", [])]
        for i, raw in enumerate(data):
            line_no = lines[i] if i < len(lines) else 0
            ident = raw.get("id") if isinstance(raw, dict) else None
            items.append(_scenario(raw, f"{path}:{line_no} (scenario {ident or i + 1})", line_no))
    else:
        raise ScenarioError(f"{path}: use a .yaml or .jsonl scenario file")
    seen: set[str] = set()
    for s in items:
        if s.id in seen:
            raise ScenarioError(f"{path}:{s.line}: duplicate scenario id {s.id!r}")
        seen.add(s.id)
    if not items:
        raise ScenarioError(f"{path}: no scenarios found")
    return items


# -- per-scenario metrics -------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _has_evidence(passage: Passage, phrases: Sequence[str]) -> bool:
    body = _norm(passage.text)
    return any(_norm(p) in body for p in phrases)


def _relevant(passage: Passage, s: Scenario) -> bool:
    """Does this passage support the scenario (expected source, or expected evidence)?"""
    if s.expect_evidence and _has_evidence(passage, s.expect_evidence):
        return True
    return bool(s.expect_sources) and passage.source in s.expect_sources


GROUNDED = 0.9  # an answer shown as sourced must have at least this share of supported sentences

# greedy within a line: a quote may itself contain “nested” quotes
_QUOTED = re.compile(r"“[^\n]*”|«[^\n]*»|\"[^\"\n]*\"")


def answer_language(text: str) -> str:
    """The language of an answer's own words: verbatim quotes and markers excluded."""
    own = MARKER_RE.sub(" ", _QUOTED.sub(" ", text))
    return detect_language(own, default="")


class _SourceCache:
    def __init__(self) -> None:
        self._texts: dict[str, str | None] = {}

    def text(self, path: str) -> str | None:
        if path not in self._texts:
            try:
                self._texts[path] = decode_text(Path(path).read_bytes())[0]  # as ingest read it
            except OSError:
                self._texts[path] = None
        return self._texts[path]


def citation_problems(answer: Answer, sources: _SourceCache) -> list[str]:
    """Why the answer's citations are not valid (empty list = valid)."""
    problems = []
    for m in MARKER_RE.finditer(answer.text):
        for n in re.findall(r"\d+", m.group(1)):
            if not 1 <= int(n) <= len(answer.citations):
                problems.append(f"marker [{n}] names no cited passage")
    retrieved = {p.chunk_id for p in answer.retrieved}
    for i, p in enumerate(answer.citations, start=1):
        if p.chunk_id not in retrieved:
            problems.append(f"citation [{i}] was not retrieved")
        where = p.text_path or p.path  # a converted file's offsets index its extracted text
        text = sources.text(where)
        if text is None or text[p.start : p.end] != p.text:
            problems.append(f"citation [{i}] text is not verbatim at {where}:{p.start}-{p.end}")
    return problems


@dataclass
class ScenarioResult:
    id: str
    question: str
    language: str
    tags: list[str]
    in_scope: bool
    retrieved: list[dict[str, Any]]
    metrics: dict[str, float]
    timings: dict[str, float]
    failures: list[str] = field(default_factory=list)
    answer: str = ""
    mode: str = ""
    abstained: bool = False
    citations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def score_scenario(s: Scenario, passages: Sequence[Passage], abstained: bool) -> tuple[dict[str, float], list[str]]:
    """Retrieval and abstention metrics for one scenario."""
    metrics: dict[str, float] = {"abstained": float(abstained)}
    failures: list[str] = []
    if not s.in_scope:
        if not abstained:
            failures.append("should have abstained: the corpus does not cover this")
        return metrics, failures
    if s.expect_sources:
        ranks = [i for i, p in enumerate(passages, start=1) if p.source in s.expect_sources]
        for k in KS:
            metrics[f"source_hit@{k}"] = float(any(r <= k for r in ranks))
        metrics["mrr"] = 1.0 / ranks[0] if ranks else 0.0
        found = {p.source for p in passages[:5]}
        metrics["source_recall@5"] = sum(src in found for src in s.expect_sources) / len(s.expect_sources)
        if not metrics["source_hit@5"]:
            failures.append(f"expected source {', '.join(s.expect_sources)} not in the top 5")
    if s.expect_evidence:
        ranks = [i for i, p in enumerate(passages, start=1) if _has_evidence(p, s.expect_evidence)]
        for k in KS:
            metrics[f"evidence_hit@{k}"] = float(any(r <= k for r in ranks))
        metrics["evidence_mrr"] = 1.0 / ranks[0] if ranks else 0.0
        if not metrics["evidence_hit@5"]:
            failures.append("no expected evidence phrase in the top 5 passages")
    if abstained:
        failures.append("abstained although the corpus covers this")
    return metrics, failures


def score_answer(
    s: Scenario, answer: Answer, sources: _SourceCache, embedder: Embedder | None = None, judge: Judge | None = None
) -> tuple[dict[str, float], list[str]]:
    """Citation and language metrics for an answered scenario."""
    metrics: dict[str, float] = {}
    failures: list[str] = []
    lang = answer_language(answer.text)
    metrics["language_match"] = float(lang == s.language)
    if lang != s.language:
        failures.append(f"answer language {lang or 'unknown'} != question language {s.language}")
    if answer.abstained or not s.in_scope:
        return metrics, failures
    problems = citation_problems(answer, sources)
    metrics["citation_valid"] = float(not problems)
    failures.extend(problems)
    if answer.citations:
        relevant = [_relevant(p, s) for p in answer.citations]
        metrics["citation_precision"] = sum(relevant) / len(relevant)
        metrics["citation_recall"] = float(any(relevant))
    else:
        metrics["citation_precision"] = 0.0
        metrics["citation_recall"] = 0.0
    if not metrics["citation_recall"]:
        failures.append("no cited passage is from an expected source or holds expected evidence")
    if answer.groundedness is not None:
        metrics["groundedness"] = float(answer.groundedness)
        metrics["grounded"] = float(metrics["groundedness"] >= GROUNDED)
        if metrics["groundedness"] < GROUNDED:
            failures.append(f"groundedness {metrics['groundedness']:.2f} < {GROUNDED}: unsupported sentences shown")
    foreign = [i for i, p in enumerate(answer.citations) if p.lang != answer.lang]
    if foreign and answer.translations:  # only answers that could have translations (a model was asked)
        metrics["translation_coverage"] = sum(
            bool(i < len(answer.translations) and answer.translations[i]) for i in foreign
        ) / len(foreign)
        # the same, counting a checked English translation shown instead of a refused one
        shown = [t or e for t, e in zip_longest(answer.translations, answer.english)]
        metrics["translation_or_english"] = sum(bool(i < len(shown) and shown[i]) for i in foreign) / len(foreign)
    if s.expect_claims and embedder is not None:
        metrics["claim_recall"] = claim_recall(s, answer, embedder, judge)
    metrics[f"mode_{answer.mode}"] = 1.0
    return metrics, failures


CLAIM_MATCH = 0.5  # without a model: cosine at which an answer sentence counts as making an expected claim
CLAIM_CANDIDATE = 0.3  # with a model: statements at least this close to a claim go to the model's check
Judge = Callable[[str, str], float]  # (statement, expected claim) -> probability the statement makes the claim


def answer_statements(answer: Answer) -> list[str]:
    """What the answer says in the asker's language: its own sentences, the translations, same-language quotes."""
    own = [MARKER_RE.sub("", line).strip() for line in _QUOTED.sub(" ", answer.text).splitlines()]
    said = [t for t in own if words(t)]
    said += [t for t in answer.translations if t]
    said += [q.text for q, p in zip(answer.quotes, answer.citations, strict=False) if p.lang == answer.lang]
    return said


def claim_recall(s: Scenario, answer: Answer, embedder: Embedder, judge: Judge | None = None) -> float:
    """Share of ``s.expect_claims`` that some statement of the answer makes.

    With a model (``judge``): the model's yes-probability >= CLAIM_JUDGE for a
    statement at least CLAIM_CANDIDATE close to the claim (the rule measured on
    tests/data/claim_match.yaml). Without: cosine >= CLAIM_MATCH and no lexical
    conflict (not better than chance on those labels; reported for reference).
    """
    said = answer_statements(answer)
    if not said:
        return 0.0
    claims = list(s.expect_claims)
    sims = embedder.embed_documents(claims) @ embedder.embed_documents(said).T
    made = 0
    for claim, row in zip(claims, sims, strict=True):
        if judge is not None:
            ranked = sorted(zip(said, row, strict=True), key=lambda pair: -pair[1])
            near = [text for text, sim in ranked if sim >= CLAIM_CANDIDATE]
            made += any(judge(text, claim) >= CLAIM_JUDGE for text in near)
            continue
        made += any(
            sim >= CLAIM_MATCH and not lexical_conflicts(claim, s.language, text, s.language)
            for text, sim in zip(said, row, strict=True)
        )
    return made / len(claims)


# -- aggregation ------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


def aggregate(results: Sequence[ScenarioResult]) -> dict[str, float]:
    """Means of per-scenario metrics (each over the scenarios it applies to)."""
    out: dict[str, float] = {"scenarios": float(len(results))}
    inscope = [r for r in results if r.in_scope]
    oos = [r for r in results if not r.in_scope]
    keys = sorted({k for r in inscope for k in r.metrics if k != "abstained"})
    for key in keys:
        values = [r.metrics[key] for r in inscope if key in r.metrics]
        if key.startswith("mode_"):
            out[key] = sum(values) / len(inscope) if inscope else 0.0
        elif values:
            out[key] = sum(values) / len(values)
    lang_values = [r.metrics["language_match"] for r in results if "language_match" in r.metrics]
    if lang_values:
        out["language_match"] = sum(lang_values) / len(lang_values)
    if oos:
        out["abstain_accuracy"] = sum(r.abstained for r in oos) / len(oos)
    if inscope:
        out["false_abstain_rate"] = sum(r.abstained for r in inscope) / len(inscope)
    out["pass_rate"] = sum(r.passed for r in results) / len(results) if results else 0.0
    for stage in ("retrieve_ms", "generate_ms", "total_ms"):
        values = [r.timings[stage] for r in results if stage in r.timings]
        if values:
            out[f"{stage}_p50"] = statistics.median(values)
            out[f"{stage}_p95"] = _percentile(values, 0.95)
    return {k: round(v, 4) for k, v in out.items()}


@dataclass
class EvalReport:
    results: list[ScenarioResult]
    summary: dict[str, Any]

    def console_summary(self) -> str:
        o = self.summary["overall"]
        keys = [
            "source_hit@1",
            "source_hit@5",
            "evidence_hit@1",
            "evidence_hit@5",
            "mrr",
            "abstain_accuracy",
            "false_abstain_rate",
            "citation_valid",
            "citation_precision",
            "citation_recall",
            "grounded",
            "language_match",
            "pass_rate",
            "retrieve_ms_p50",
            "total_ms_p50",
        ]
        parts = [f"{k}={o[k]:.3g}" for k in keys if k in o]
        failed = sum(not r.passed for r in self.results)
        return f"{len(self.results)} scenarios, {failed} failed · " + " ".join(parts)


def _retrieved_rows(passages: Iterable[Passage]) -> list[dict[str, Any]]:
    return [
        {"source": p.source, "chunk_id": p.chunk_id, "chunk": p.chunk, "score": p.score, "signals": p.signals}
        for p in passages
    ]


def _run_one(advisor: Advisor, s: Scenario, retrieval_only: bool, llm: bool, sources: _SourceCache) -> ScenarioResult:
    t0 = time.perf_counter()
    k = advisor.settings.k
    found = advisor.search(s.question, k=max(5, k))  # metrics look at the top 5
    metrics, failures = score_scenario(s, found.passages, found.abstain)
    result = ScenarioResult(
        s.id,
        s.question,
        s.language,
        list(s.tags),
        s.in_scope,
        _retrieved_rows(found.passages),
        metrics,
        {"retrieve_ms": found.timings.get("retrieve_ms", 0.0)},
        failures,
        abstained=found.abstain,
    )
    if not retrieval_only:
        top_k = replace(found, passages=found.passages[:k])
        answer = advisor.answer(top_k, llm=llm)
        judge = _judge(advisor) if llm and not answer.abstained and s.expect_claims else None
        more, problems = score_answer(s, answer, sources, advisor.embedder, judge)
        result.metrics.update(more)
        # retrieval decides abstention; the answer may abstain too (nothing extractable)
        result.abstained = answer.abstained
        result.metrics["abstained"] = float(answer.abstained)
        if answer.abstained and s.in_scope and "abstained although the corpus covers this" not in failures:
            result.failures.append("abstained although the corpus covers this")
        if not answer.abstained and not s.in_scope and not failures:
            result.failures.append("should have abstained: the corpus does not cover this")
        result.failures.extend(problems)
        result.answer, result.mode = answer.text, answer.mode
        result.citations = [
            {
                "marker": i,
                "source": p.source,
                "start": p.start,
                "end": p.end,
                "text": p.text,
                "quote": answer.quotes[i - 1].text if i <= len(answer.quotes) else None,
                "translation": answer.translations[i - 1] if i <= len(answer.translations) else None,
                "english_translation": answer.english[i - 1] if i <= len(answer.english) else None,
            }
            | ({"text_path": p.text_path, "page": p.page} if p.text_path else {})
            for i, p in enumerate(answer.citations, start=1)
        ]
        result.notes = list(answer.notes)
        result.timings.update(
            {key: float(v) for key, v in answer.timings.items() if key.endswith("_ms")}
            | (
                {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens}
                if answer.completion_tokens
                else {}
            )
        )
        result.timings["generate_ms"] = answer.timings.get("prefill_ms", 0.0) + answer.timings.get(
            "generate_ms", answer.timings.get("extract_ms", 0.0)
        )
    result.timings["total_ms"] = (time.perf_counter() - t0) * 1000
    return result


def _judge(advisor: Advisor) -> Judge:
    """The model as the judge of whether a statement makes an expected claim."""
    return lambda statement, claim: claim_probability(advisor.generator, statement, claim)


def run_evaluation(
    advisor: Advisor,
    scenarios: Sequence[Scenario],
    *,
    retrieval_only: bool = False,
    llm: bool = True,
    progress: Callable[[int, int], None] | None = None,
    concurrency: int = 1,
) -> EvalReport:
    """Run every scenario through one loaded advisor.

    ``concurrency > 1`` runs scenarios in parallel threads; it is meant for a
    remote model endpoint (``llm_url``), since a local model answers one
    request at a time.
    """
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, not {concurrency}")
    if concurrency > 1 and not advisor.settings.llm_url and not retrieval_only and llm:
        raise InputError("--concurrency above 1 needs a model server (--llm-url): a local model runs serially")
    sources = _SourceCache()
    t_start = time.perf_counter()
    if concurrency == 1:
        results = []
        for n, s in enumerate(scenarios):
            results.append(_run_one(advisor, s, retrieval_only, llm, sources))
            if progress:
                progress(n + 1, len(scenarios))
    else:
        from concurrent.futures import ThreadPoolExecutor

        advisor.search(scenarios[0].question)  # load the models once, before the threads start
        done = 0
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(_run_one, advisor, s, retrieval_only, llm, sources) for s in scenarios]
            try:
                for future in futures:
                    future.result()
                    done += 1
                    if progress:
                        progress(done, len(scenarios))
            except BaseException:  # Ctrl-C or a failed scenario: stop now, not after every queued one
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        results = [f.result() for f in futures]
    summary = summarise(results, advisor, retrieval_only, llm, time.perf_counter() - t_start)
    summary["config"]["concurrency"] = concurrency
    return EvalReport(results, summary)


def summarise(
    results: Sequence[ScenarioResult], advisor: Advisor | None, retrieval_only: bool, llm: bool, seconds: float
) -> dict[str, Any]:
    by_lang = {lang: aggregate([r for r in results if r.language == lang]) for lang in LANGUAGES}
    tags = sorted({t for r in results for t in r.tags})
    by_tag = {t: aggregate([r for r in results if t in r.tags]) for t in tags}
    config: dict[str, Any] = {"retrieval_only": retrieval_only, "llm": llm and not retrieval_only}
    # how claim_recall decided that an answer makes a claim (see claim_recall)
    config["claim_rule"] = "model" if config["llm"] else "embedding"
    if advisor is not None:
        s = advisor.settings
        config.update(
            embedder=s.embedder,
            k=s.k,
            hybrid=s.hybrid,
            chunk_tokens=s.chunk_tokens,
            abstain_threshold=abstain_threshold(s, advisor.embedder),
            model=str(s.model) if s.model else (s.llm_url or "default Qwen2.5-Coder-1.5B-Instruct"),
        )
    return {
        "config": config,
        "seconds": round(seconds, 2),
        "overall": aggregate(results),
        "by_language": {k: v for k, v in by_lang.items() if v["scenarios"]},
        "by_tag": by_tag,
    }


# -- reports ------------------------------------------------------------------

_TABLE_KEYS = [
    ("scenarios", "n"),
    ("source_hit@1", "src@1"),
    ("source_hit@3", "src@3"),
    ("source_hit@5", "src@5"),
    ("mrr", "MRR"),
    ("evidence_hit@1", "ev@1"),
    ("evidence_hit@5", "ev@5"),
    ("abstain_accuracy", "abst.acc"),
    ("false_abstain_rate", "false abst."),
    ("citation_valid", "cit.valid"),
    ("citation_precision", "cit.prec"),
    ("citation_recall", "cit.recall"),
    ("grounded", "grounded"),
    ("language_match", "lang"),
    ("pass_rate", "pass"),
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and value > 1 else f"{value:.2f}"
    return str(value)


def _table(rows: dict[str, dict[str, float]]) -> list[str]:
    cols = [(k, h) for k, h in _TABLE_KEYS if any(k in r for r in rows.values())]
    lines = ["| slice | " + " | ".join(h for _, h in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        cells = [(str(int(row[k])) if k == "scenarios" else _fmt(row[k])) if k in row else "–" for k, _ in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: EvalReport) -> str:
    s = report.summary
    lines = ["# advisor eval report", ""]
    cfg = ", ".join(f"{k}={v}" for k, v in s["config"].items())
    lines += [f"Configuration: {cfg}. Wall time {s['seconds']} s.", ""]
    lines += ["## Overall and by question language", ""]
    lines += _table({"overall": s["overall"], **{f"lang={k}": v for k, v in s["by_language"].items()}})
    lines += ["", "## By tag", ""]
    lines += _table({f"tag={k}": v for k, v in s["by_tag"].items()})
    o = s["overall"]
    lines += ["", "## Latency (ms)", "", "| stage | p50 | p95 |", "|---|---|---|"]
    for stage in ("retrieve_ms", "generate_ms", "total_ms"):
        if f"{stage}_p50" in o:
            lines.append(f"| {stage[:-3]} | {o[stage + '_p50']:.0f} | {o[stage + '_p95']:.0f} |")
    slow = sorted(report.results, key=lambda r: -r.timings.get("total_ms", 0.0))[:5]
    lines += ["", "## Slowest scenarios", ""]
    lines += [f"- `{r.id}` {r.timings.get('total_ms', 0.0):.0f} ms: {r.question}" for r in slow]
    failed = [r for r in report.results if not r.passed]
    lines += ["", f"## Failures ({len(failed)} of {len(report.results)})", ""]
    if not failed:
        lines.append("None.")
    for r in failed:
        top = ", ".join(f"{row['source']}#{row['chunk']}" for row in r.retrieved[:5]) or "nothing"
        lines.append(f"- **{r.id}** ({r.language}) {r.question}")
        for why in r.failures:
            lines.append(f"  - {why}")
        lines.append(f"  - retrieved: {top}")
    return "\n".join(lines) + "\n"


def render_junit(report: EvalReport) -> str:
    failures = sum(not r.passed for r in report.results)
    suite = ET.Element(
        "testsuite",
        name="advisor-eval",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        time=f"{report.summary['seconds']:.3f}",
    )
    for r in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"scenarios.{r.language}.{(r.tags[0] if r.tags else 'untagged')}",
            name=r.id,
            time=f"{r.timings.get('total_ms', 0.0) / 1000:.3f}",
        )
        if r.failures:
            fail = ET.SubElement(case, "failure", message="; ".join(r.failures))
            fail.text = f"question: {r.question}\n" + "\n".join(r.failures)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_reports(report: EvalReport, out: Path) -> None:
    """``results.jsonl``, ``summary.json``, ``report.md`` and ``junit.xml`` in ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "results.jsonl").open("w", encoding="utf-8") as fh:
            for r in report.results:
                row = asdict(r)
                row["passed"] = r.passed
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (out / "summary.json").write_text(json.dumps(report.summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
        (out / "report.md").write_text(render_markdown(report), "utf-8")
        (out / "junit.xml").write_text(render_junit(report), "utf-8")
    except OSError as exc:
        raise InputError(f"cannot write reports to {out}: {exc.strerror or exc}") from None


# -- gates and baselines ------------------------------------------------------


def parse_floors(specs: Sequence[str]) -> dict[str, float]:
    """``["evidence_hit@5=0.9"]`` -> ``{"evidence_hit@5": 0.9}``."""
    floors = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            floors[name.strip()] = float(value)
            if not math.isfinite(floors[name.strip()]):  # a nan floor would pass every run
                raise ValueError
        except ValueError:
            raise InputError(f"--min takes METRIC=VALUE, e.g. --min evidence_hit@5=0.9, not {spec!r}") from None
    return floors


def check_floors(summary: dict[str, Any], floors: dict[str, float]) -> list[str]:
    """Messages for metrics below their floor (``*_rate`` of false abstention is a ceiling)."""
    overall = summary["overall"]
    out = []
    for name, floor in floors.items():
        if name not in overall:
            known = ", ".join(sorted(overall))
            hint = " (answers were not made: drop --retrieval-only to measure it)" if _answer_metric(name) else ""
            raise InputError(f"metric {name!r} for --min was not measured in this run{hint}; measured: {known}")
        value = overall[name]
        if name == "false_abstain_rate" or name.endswith("_ms_p50") or name.endswith("_ms_p95"):
            if value > floor:
                out.append(f"{name} = {value:.4g} is above its ceiling {floor:.4g}")
        elif value < floor:
            out.append(f"{name} = {value:.4g} is below its floor {floor:.4g}")
    return out


def _answer_metric(name: str) -> bool:
    return name.startswith(("citation_", "grounded", "draft_groundedness", "language_match", "mode_", "generate_ms"))


def load_baseline(baseline_path: Path) -> dict[str, Any]:
    """The overall metrics of an earlier ``summary.json`` (read before a run, so a bad path fails fast)."""
    try:
        old = json.loads(Path(baseline_path).read_text(encoding="utf-8"))["overall"]
        if not isinstance(old, dict):
            raise TypeError("'overall' is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read baseline {baseline_path}: {exc}; pass an earlier summary.json") from None
    return old


def deltas(summary: dict[str, Any], old: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric: baseline, now and (for numbers) delta."""
    new = summary["overall"]
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        row: dict[str, Any] = {"baseline": a, "now": b}
        if isinstance(a, int | float) and isinstance(b, int | float):
            row["delta"] = round(b - a, 4)
        out[key] = row
    return out


def compare(summary: dict[str, Any], baseline: Path | dict[str, Any]) -> str:
    """A table of overall metrics against an earlier ``summary.json`` (a path, or its loaded metrics)."""
    old = baseline if isinstance(baseline, dict) else load_baseline(baseline)
    new = summary["overall"]
    lines = [f"{'metric':<24}{'baseline':>10}{'now':>10}{'delta':>10}"]
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, int | float) and isinstance(b, int | float):
            lines.append(f"{key:<24}{a:>10.4g}{b:>10.4g}{b - a:>+10.4g}")
        else:
            lines.append(f"{key:<24}{_fmt(a):>10}{_fmt(b):>10}{'':>10}")
    return "\n".join(lines)
