"""Performance benchmark for advisor: startup, retrieval, answers, generation, ingest, memory.

Run (from the repository, with the package installed, fully offline)::

    HF_HUB_OFFLINE=1 python scripts/bench.py --out bench-out            # full run, < 10 min on 2 cores
    HF_HUB_OFFLINE=1 python scripts/bench.py --out bench-out --quick    # smoke run, ~1-2 min
    python scripts/bench.py --sections retrieval,synthetic              # only some sections

It writes ``<out>/bench.json`` (every sample summary, the settings used, the load
average around each section) and prints a markdown table with one PASS/FAIL line
per target. ``ADVISOR_*`` variables of the calling shell are ignored, so the
numbers are those of the built-in defaults (``--threads`` sets the model's threads).

The machine this runs on may be shared and noisy, so every number is a median
over repeated runs, and comparisons are *ratios of runs interleaved side by side*
(A B B A ...), never two absolute timings taken minutes apart.

Sections and what their numbers mean
------------------------------------
startup
    Wall time of ``advisor --help`` and ``advisor ask --help`` as subprocesses
    (median of N, rounds interleaved with ``python -c pass``) and the per-round
    ratio to ``python -c pass`` (the interpreter's own start-up). Target: < 0.3 s.
retrieval
    Warm ``Advisor.search`` (what ``Advisor.retrieve`` calls) on the bundled corpus:
    p50/p95 over every question of ``tests/scenarios/shipped.yaml``, several passes,
    the query-embedding cache emptied before each call. Split: query embedding,
    Chroma search (``dense_ms``), and the rest (fusion/MMR, language detection and
    the API's checks). Target: p50 < 50 ms.
synthetic
    A Chroma store of 100,000 chunks (the 37 real chunks + synthetic ones with
    clustered unit vectors and real-looking text and metadata) written through
    ``ChromaStore.upsert``; reports the build time, then ``Retriever.retrieve``
    p50/p95 for the real questions, interleaved with the same call on the shipped
    store (ratio 100k / shipped), plus source_hit@5 at both sizes as a sanity check.
    ``--hybrid`` also times hybrid retrieval and the BM25 build separately.
    Target: p50 < 150 ms.
generation
    The direct-answer request the advisor builds (``advisor.answering.answer_prompt``
    over the selected evidence, with its grammar) run through ``LlamaCppGenerator.chat``
    and through a raw ``llama_cpp.Llama.create_chat_completion`` with the same n_ctx,
    threads, seed, grammar and max_tokens, in pairs with alternating order, one question per pair.
    Greedy decoding makes both produce the same tokens (checked). Reported: median
    per-pair wall-time ratio advisor / raw (target <= 1.05), the CPU-time and
    decode-only ratios, and tokens/s of both. Both models use ``--gen-threads``
    (default 1: with every core, llama.cpp's threads wait on each other whenever
    another process takes a core, and the pairs become mostly noise).
cold
    ``advisor ask --json`` as a new process, the way a user asks from the shell, on a home
    whose store is built but which has not seen the question (no cached translations),
    with the saved prompt starts (``<home>/prompt-states``, made by an earlier run of the
    same questions on another home) and with ``ADVISOR_PROMPT_CACHE=false``, in pairs with
    alternating order, one question per pair. The two answers must be the same (text, mode,
    translations). Reported: median wall time of each side and the median per-pair ratio
    with / without.
answer
    ``Advisor.ask(q, llm=True)`` on ~5 questions with the advisor's own thread
    setting (``--threads``, default all cores): medians of retrieve / prompt
    building / prefill / generate milliseconds and token counts (``Answer.timings``).
ingest
    ``Advisor.ingest`` of the bundled corpus replicated R times (distinct files and
    ids) into a fresh home, against the raw embedder doing the same model work
    (``embed_documents`` on the same chunk texts, same batch size, plus one call for
    the vocabulary's word vectors that word matching needs), in many short pairs
    with alternating order (short,
    so that load changes on a shared machine hit both sides of a pair alike):
    chunks/s ratio (target >= 0.8), with the CPU-time ratio and the ratio of total
    times beside it; then an unchanged re-ingest against the first ingest (target
    <= 0.1).
formats
    The bundled articles written as PDF (fpdf2, when installed), HTML and Word
    files, R copies of each, against the same number of plain-text copies: in
    pairs with alternating order, each side's first ingest into a fresh home
    and then an unchanged re-ingest (``time.perf_counter``). Reported: median
    re-ingest / first ingest for converted files (target <= 0.1, as for text)
    and for text files, and the median per-pair ratio of the two.
serve
    Extractive answers (``llm=False``) through ``advisor serve``'s ``POST /api/ask``
    (uvicorn on a loopback port, one kept-alive HTTP connection, the JSON parsed)
    against ``Advisor.ask`` on the same advisor, in pairs with alternating order
    (A B, B A, ...), the answer cache and query-embedding cache emptied before every
    call; the same answer text is checked. Reported: median of per-pair wall-time
    ratios HTTP / Python API (target <= 1.05) and both medians.
rss
    Peak resident memory (``ru_maxrss`` of ``RUSAGE_CHILDREN``, KiB on Linux) of
    ``advisor ingest``, ``advisor ask --no-llm`` and ``advisor ask`` (with the model),
    each measured by its own wrapper process that runs only that one command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from advisor.answering import answer_prompt
from advisor.api import Advisor
from advisor.embedders import Embedder, QueryCache, make_embedder
from advisor.evaluation import Scenario, load_scenarios
from advisor.extractive import select_evidence
from advisor.generation import LlamaCppGenerator, default_model_path, format_plain
from advisor.ingest import MANIFEST, bundled_corpus, discover, make_chunks, read_document
from advisor.prompts import Message
from advisor.retrieval import Retriever, word_threshold
from advisor.settings import Settings, load_settings
from advisor.store import ChromaStore
from advisor.wordmatch import content_words

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "scenarios" / "shipped.yaml"
SECTIONS = ("startup", "retrieval", "synthetic", "generation", "cold", "answer", "ingest", "formats", "serve", "rss")

# Peak-RSS wrapper: runs exactly one command, waits for it, reports its peak RSS.
RSS_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "wall = time.perf_counter() - t\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'rc': rc, 'maxrss_kib': peak, 'wall_s': wall}))\n"
)


@dataclass(frozen=True)
class Plan:
    """How much work each section does (``--quick`` shrinks it)."""

    startup_runs: int = 7
    retrieval_passes: int = 5
    synthetic_chunks: int = 100_000
    synthetic_passes: int = 2
    generation_pairs: int = 6
    generation_max_tokens: int = 64
    answer_questions: int = 5
    cold_pairs: int = 6
    ingest_replicas: int = 4
    ingest_pairs: int = 9
    formats_replicas: int = 2
    formats_pairs: int = 5
    serve_pairs: int = 40
    rss_runs: int = 1


QUICK = Plan(
    startup_runs=3,
    retrieval_passes=2,
    synthetic_chunks=10_000,
    synthetic_passes=1,
    generation_pairs=2,
    generation_max_tokens=24,
    answer_questions=2,
    cold_pairs=2,
    ingest_replicas=2,
    ingest_pairs=3,
    formats_replicas=1,
    formats_pairs=2,
    serve_pairs=12,
    rss_runs=1,
)


@dataclass
class Target:
    name: str
    value: float
    goal: str
    ok: bool
    unit: str = ""


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    info: list[tuple[str, str]] = field(default_factory=list)

    def target(self, name: str, value: float, goal: str, ok: bool, unit: str = "") -> None:
        self.targets.append(Target(name, value, goal, ok, unit))

    def note(self, name: str, value: str) -> None:
        self.info.append((name, value))


# -- small helpers -------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else math.nan


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"n": len(values), "p50": median(values), "p95": pct(values, 95), "min": min(values, default=math.nan)}


def clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become floats, floats are rounded."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 4)
    return value


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    env.update(extra or {})
    return env


def advisor_bin() -> str:
    beside = Path(sys.executable).with_name("advisor")
    if beside.is_file():
        return str(beside)
    found = shutil.which("advisor")
    if not found:
        raise SystemExit("the 'advisor' command is not installed; pip install -e . first")
    return found


def fresh_queries(embedder: Embedder) -> bool:
    """Empty the query-embedding caches of ``embedder`` (and its parts); False if it has none."""
    emptied = False
    for part in [embedder, *getattr(embedder, "parts", [])]:
        if isinstance(getattr(part, "_cache", None), QueryCache):
            setattr(part, "_cache", QueryCache())  # noqa: B010 - a private cache, on purpose
            emptied = True
    return emptied


def uncached(embedder: Embedder, question: str, n: int) -> str:
    """``question`` made to miss the query cache: cache emptied, else a distinct suffix."""
    return question if fresh_queries(embedder) else f"{question} ({n})"


def spread(items: Sequence[Scenario], n: int) -> list[Scenario]:
    """Up to ``n`` scenarios, round-robin over their languages (in file order)."""
    by_lang: dict[str, list[Scenario]] = {}
    for s in items:
        by_lang.setdefault(s.language, []).append(s)
    out: list[Scenario] = []
    while len(out) < n and any(by_lang.values()):
        for lang in list(by_lang):
            if by_lang[lang] and len(out) < n:
                out.append(by_lang[lang].pop(0))
    return out


def retrieval_split(walls: list[float], timings: list[dict[str, float]]) -> dict[str, Any]:
    embed = [t["embed_ms"] for t in timings]
    dense = [t["dense_ms"] for t in timings]
    rest = [w - e - d for w, e, d in zip(walls, embed, dense, strict=True)]
    return {
        "wall_ms": summary(walls),
        "embed_ms": summary(embed),
        "chroma_ms": summary(dense),
        "rest_ms": summary(rest),
        "lexical_ms": summary([t["lexical_ms"] for t in timings]),
        "fuse_mmr_ms": summary([t["fuse_ms"] for t in timings]),
        "outside_retriever_ms": summary([w - t["retrieve_ms"] for w, t in zip(walls, timings, strict=True)]),
    }


# -- shared state --------------------------------------------------------------


class Context:
    """What several sections share: one embedder, one shipped store, the scenarios."""

    def __init__(self, plan: Plan, workdir: Path, threads: int | None) -> None:
        self.plan = plan
        self.workdir = workdir
        self.threads = threads
        self.scenarios = load_scenarios(SCENARIOS)
        self.questions = [s.question for s in self.scenarios]
        self._embedder: Embedder | None = None
        self._shipped: Advisor | None = None
        self.overrides: dict[str, Any] = {"n_threads": threads} if threads else {}
        self.hybrid = False
        self.gen_threads = 1

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            t0 = time.perf_counter()
            self._embedder = make_embedder(load_settings(home=self.workdir / "settings-only").embedder)
            log(f"embedder {self._embedder.name} loaded in {time.perf_counter() - t0:.1f} s")
        return self._embedder

    def shipped(self) -> Advisor:
        """An advisor with the bundled corpus ingested (built once)."""
        if self._shipped is None:
            adv = Advisor(home=self.workdir / "shipped", embedder=self.embedder, **self.overrides)
            report = adv.ingest()
            log(f"shipped store: {report.added} documents, {adv.store.count()} chunks")
            self._shipped = adv
        return self._shipped


# -- 1. CLI startup ------------------------------------------------------------


def bench_startup(ctx: Context, res: Results) -> None:
    exe = advisor_bin()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "advisor --help": [exe, "--help"],
        "advisor ask --help": [exe, "ask", "--help"],
    }
    env = subprocess_env()
    names = list(commands)
    for name in names:  # one untimed run each: page cache, .pyc files
        subprocess.run(commands[name], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(ctx.plan.startup_runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
            t0 = time.perf_counter()
            subprocess.run(commands[name], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"runs": ctx.plan.startup_runs}
    base = times["python -c pass"]
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base, strict=True)]
        out[name] = {
            "median_s": median(times[name]),
            "samples_s": times[name],
            "ratio_to_python_median": median(ratios),
        }
    res.sections["startup"] = out
    res.note("`python -c pass` (median)", f"{out['python -c pass']['median_s'] * 1000:.0f} ms")
    for name in names[1:]:
        value = out[name]["median_s"]
        res.target(f"`{name}` wall (median of {ctx.plan.startup_runs})", value, "< 0.3 s", value < 0.3, "s")
        res.note(f"`{name}` / `python -c pass`", f"{out[name]['ratio_to_python_median']:.1f}x")


# -- 2. warm retrieval on the shipped corpus ----------------------------------


def bench_retrieval(ctx: Context, res: Results) -> None:
    adv = ctx.shipped()
    emb = adv.embedder
    for q in ctx.questions[:5]:  # warm-up: models, Chroma's index, code paths
        adv.search(uncached(emb, q, -1))
    walls: list[float] = []
    timings: list[dict[str, float]] = []
    n = 0
    for _ in range(ctx.plan.retrieval_passes):
        for q in ctx.questions:
            question = uncached(emb, q, n)
            n += 1
            t0 = time.perf_counter()
            found = adv.search(question)
            walls.append((time.perf_counter() - t0) * 1000)
            timings.append(found.timings)
    split = retrieval_split(walls, timings)
    split.update(chunks=adv.store.count(), questions=len(ctx.questions), passes=ctx.plan.retrieval_passes)
    res.sections["retrieval"] = split
    p50, p95 = split["wall_ms"]["p50"], split["wall_ms"]["p95"]
    res.target(f"warm retrieval p50, shipped ({split['chunks']} chunks)", p50, "< 50 ms", p50 < 50, "ms")
    res.note(
        "shipped retrieval p95; split p50 embed / Chroma / rest",
        f"{p95:.1f} ms; {split['embed_ms']['p50']:.1f} / {split['chroma_ms']['p50']:.1f} / "
        f"{split['rest_ms']['p50']:.1f} ms",
    )


# -- 3. warm retrieval at 100k chunks ------------------------------------------


def _real_chunks(embedder: Embedder, settings: Settings) -> list[tuple[str, np.ndarray, str, dict[str, Any]]]:
    """The bundled corpus chunked and embedded exactly as ingest does."""
    from advisor.chunking import CHUNKER_VERSION
    from advisor.ingest import _chunk_meta

    found, _ = discover([bundled_corpus()])
    out = []
    for item in found:
        doc = read_document(item, item.path.read_bytes())
        chunks = make_chunks(doc, embedder, settings.chunk_tokens)
        vectors = embedder.embed_documents([c.embed_text for c in chunks])
        for c, v in zip(chunks, vectors, strict=True):
            meta = _chunk_meta(
                doc, c, len(chunks), item.root, f"v{CHUNKER_VERSION}:{settings.chunk_tokens}", bundled=True
            )
            out.append((c.chunk_id, v, c.text, meta))
    return out


def _sentence_pool() -> list[str]:
    pool: list[str] = []
    for path in sorted(bundled_corpus().glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        pool += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]
    return pool


def synthetic_batches(
    n: int, dim: int, batch: int, seed: int = 0
) -> Iterable[tuple[list[str], np.ndarray, list[str], list[dict[str, Any]]]]:
    """Chunks shaped like ingest's: ~10 per document, documents clustered around topics."""
    rng = np.random.default_rng(seed)
    pool = _sentence_pool()
    topics = rng.standard_normal((max(8, n // 400), dim)).astype(np.float32)
    langs = ("es", "de", "en")
    per_doc = 10
    doc_vec = np.zeros(dim, dtype=np.float32)
    offset = 0
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        ids, texts, metas = [], [], []
        vectors = np.empty((hi - lo, dim), dtype=np.float32)
        for i in range(lo, hi):
            d, index = divmod(i, per_doc)
            if index == 0:
                doc_vec = topics[rng.integers(len(topics))] + 0.6 * rng.standard_normal(dim).astype(np.float32)
                offset = 0
            vectors[i - lo] = doc_vec + 0.5 * rng.standard_normal(dim).astype(np.float32)
            parts: list[str] = []
            while sum(len(p) + 1 for p in parts) < 700:
                parts.append(pool[int(rng.integers(len(pool)))])
            text = " ".join(parts)
            doc_id = f"synthetic-{d:06d}"
            title = f"Synthetic article {d}"
            ids.append(hashlib.sha256(f"{doc_id}\0{index}".encode()).hexdigest()[:32])
            texts.append(text)
            metas.append(
                {
                    "doc_id": doc_id,
                    "path": f"/synthetic/{doc_id}.txt",
                    "title": title,
                    "lang": langs[d % len(langs)],
                    "start": offset,
                    "end": offset + len(text),
                    "index": index,
                    "n_chunks": per_doc,
                    "doc_sha": hashlib.sha256(doc_id.encode()).hexdigest(),
                    "root": "/synthetic",
                    "context": f"{title} › Section {index // 3 + 1}",
                    "flagged": False,
                }
            )
            offset += len(text) + 2
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield ids, vectors, texts, metas


def _hit5(scenarios: Sequence[Scenario], sources: Sequence[list[str]]) -> float:
    pairs = [(s, got) for s, got in zip(scenarios, sources, strict=True) if s.in_scope]
    return sum(1 for s, got in pairs if set(s.expect_sources) & set(got)) / max(1, len(pairs))


def _build_synthetic(ctx: Context, settings: Settings) -> tuple[ChromaStore, int, float]:
    """A store of the shipped chunks plus synthetic ones, ``synthetic_chunks`` in all: it, its count, build seconds."""
    emb = ctx.embedder
    n = ctx.plan.synthetic_chunks
    store: ChromaStore = ChromaStore(ctx.workdir / "synthetic-chroma", "synthetic", emb.name, emb.dim)
    real = _real_chunks(emb, settings)
    batch = max(1, min(store.max_batch(), 5000))
    log(f"building a {n}-chunk store (batches of {batch}, client max {store.max_batch()}) ...")
    t0 = time.perf_counter()
    store.upsert([r[0] for r in real], np.stack([r[1] for r in real]), [r[2] for r in real], [r[3] for r in real])
    written = len(real)
    for ids, vectors, texts, metas in synthetic_batches(n - len(real), emb.dim, batch):
        store.upsert(ids, vectors, texts, metas)
        written += len(ids)
        if written % 20_000 < batch:
            log(f"  {written} chunks, {time.perf_counter() - t0:.0f} s")
    store.bump_version()
    build_s = time.perf_counter() - t0
    count = store.count()
    log(f"built {count} chunks in {build_s:.0f} s")
    return store, count, build_s


def _hybrid_at_scale(ctx: Context, res: Results, store: ChromaStore, settings: Settings, k: int) -> dict[str, Any]:
    """BM25 over the big store: its build time and retrieval walls (``k``: the first unused query nonce)."""
    emb = ctx.embedder
    hybrid = Retriever(store, emb, settings.model_copy(update={"hybrid": True}))
    t2 = time.perf_counter()
    hybrid.lexical_index()
    bm25_s = time.perf_counter() - t2
    walls = []
    for q in ctx.questions:
        t = time.perf_counter()
        hybrid.retrieve(uncached(emb, q, k))
        k += 1
        walls.append((time.perf_counter() - t) * 1000)
    res.note(
        f"hybrid at {store.count()}: BM25 build; retrieval p50",
        f"{bm25_s:.1f} s; {median(walls):.1f} ms",
    )
    return {"bm25_build_s": bm25_s, "wall_ms": summary(walls)}


def bench_synthetic(ctx: Context, res: Results) -> None:
    emb = ctx.embedder
    settings = load_settings(home=ctx.workdir / "synthetic-home")
    store, count, build_s = _build_synthetic(ctx, settings)
    retriever = Retriever(store, emb, settings)
    t1 = time.perf_counter()
    retriever.retrieve(uncached(emb, ctx.questions[0], -1))
    first_ms = (time.perf_counter() - t1) * 1000
    shipped = ctx.shipped().retriever
    for q in ctx.questions[1:6]:  # warm-up
        retriever.retrieve(uncached(emb, q, -2))
        shipped.retrieve(uncached(emb, q, -2))

    big_walls: list[float] = []
    big_timings: list[dict[str, float]] = []
    ratios: list[float] = []
    big_sources: list[list[str]] = []
    small_sources: list[list[str]] = []
    k = 0
    for p in range(ctx.plan.synthetic_passes):
        for i, q in enumerate(ctx.questions):
            pair: dict[str, float] = {}
            order = ("big", "small") if (i + p) % 2 == 0 else ("small", "big")
            for which in order:
                question = uncached(emb, q, k)
                k += 1
                r = retriever if which == "big" else shipped
                t = time.perf_counter()
                found = r.retrieve(question)
                pair[which] = (time.perf_counter() - t) * 1000
                if p == 0:
                    (big_sources if which == "big" else small_sources).append([x.source for x in found.passages])
                if which == "big":
                    big_timings.append(found.timings)
            big_walls.append(pair["big"])
            ratios.append(pair["big"] / pair["small"])
    split = retrieval_split(big_walls, big_timings)
    split.update(
        chunks=count,
        build_s=build_s,
        build_chunks_per_s=count / build_s,
        first_query_ms=first_ms,
        ratio_to_shipped_median=median(ratios),
        source_hit5_synthetic=_hit5(ctx.scenarios, big_sources),
        source_hit5_shipped=_hit5(ctx.scenarios, small_sources),
        passes=ctx.plan.synthetic_passes,
    )
    if ctx.hybrid:
        split["hybrid"] = _hybrid_at_scale(ctx, res, store, settings, k)
    res.sections["synthetic"] = split
    p50 = split["wall_ms"]["p50"]
    res.target(f"warm retrieval p50 at {count:,} chunks", p50, "< 150 ms", p50 < 150, "ms")
    res.note(
        f"{count:,} chunks: p95; split p50 embed / Chroma / rest; ratio to shipped",
        f"{split['wall_ms']['p95']:.1f} ms; {split['embed_ms']['p50']:.1f} / {split['chroma_ms']['p50']:.1f} / "
        f"{split['rest_ms']['p50']:.1f} ms; {split['ratio_to_shipped_median']:.2f}x",
    )
    res.note(
        f"{count:,} chunks: build time (upsert); source_hit@5 synthetic vs shipped",
        f"{build_s:.0f} s ({split['build_chunks_per_s']:.0f} chunks/s); "
        f"{split['source_hit5_synthetic']:.2f} vs {split['source_hit5_shipped']:.2f}",
    )


# -- 5. generation overhead ----------------------------------------------------


def advisor_messages(adv: Advisor, question: str) -> tuple[list[Message], str]:
    """The direct-answer request (messages and grammar) the advisor builds for ``question`` (quotes untranslated)."""
    found = adv.search(question)
    picks = select_evidence(found.question, found.passages, adv.embedder)
    return answer_prompt(found.question, found.lang, [p.sentence.text for p in picks])


@dataclass
class GenRun:
    wall_s: float
    cpu_s: float
    first_token_s: float
    text: str


def bench_generation(ctx: Context, res: Results) -> None:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

    adv = ctx.shipped()
    s = adv.settings
    path = s.model or default_model_path()
    threads = ctx.gen_threads
    gen = LlamaCppGenerator(Path(path), n_ctx=s.n_ctx, n_threads=threads, seed=s.seed, temperature=s.temperature)
    raw: Any = Llama(
        model_path=str(path),
        n_ctx=s.n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=s.seed,
        verbose=False,
    )
    max_tokens = ctx.plan.generation_max_tokens

    def run_raw(request: tuple[list[Message], str]) -> GenRun:
        messages, grammar = request
        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": s.temperature,
            "seed": s.seed,
            "stream": True,
            "grammar": LlamaGrammar.from_string(grammar, verbose=False),
        }
        t0, c0 = time.perf_counter(), time.process_time()
        first: float | None = None
        pieces: list[str] = []
        if gen.has_template:
            for event in raw.create_chat_completion(messages=messages, **kwargs):
                piece = event["choices"][0].get("delta", {}).get("content")
                if piece:
                    first = first or time.perf_counter()
                    pieces.append(piece)
        else:
            for event in raw.create_completion(prompt=format_plain(messages), stop=["###"], **kwargs):
                piece = event["choices"][0].get("text")
                if piece:
                    first = first or time.perf_counter()
                    pieces.append(piece)
        end = time.perf_counter()
        return GenRun(end - t0, time.process_time() - c0, (first or end) - t0, "".join(pieces))

    def run_adv(request: tuple[list[Message], str]) -> GenRun:
        messages, grammar = request
        t0, c0 = time.perf_counter(), time.process_time()
        result = gen.chat(messages, max_tokens, timeout=3600, grammar=grammar)
        return GenRun(time.perf_counter() - t0, time.process_time() - c0, result.prefill_ms / 1000, result.text)

    in_scope = [x for x in ctx.scenarios if x.in_scope]
    chosen = list(reversed(in_scope))[: ctx.plan.generation_pairs + 1]  # not the answer section's questions
    prompts = [advisor_messages(adv, x.question) for x in chosen]
    run_raw(prompts[0])  # warm-up both
    run_adv(prompts[0])
    pairs: list[dict[str, Any]] = []
    for i, request in enumerate(prompts[1:]):
        messages = request[0]
        sides: dict[str, GenRun] = {}
        order: tuple[tuple[str, Callable[[tuple[list[Message], str]], GenRun]], ...] = (
            ("advisor", run_adv),
            ("raw", run_raw),
        )
        for name, fn in order if i % 2 == 0 else tuple(reversed(order)):
            sides[name] = fn(request)
        a, r = sides["advisor"], sides["raw"]
        tokens = gen.count_tokens(a.text)
        pairs.append(
            {
                "first": "advisor" if i % 2 == 0 else "raw",
                "advisor_s": a.wall_s,
                "raw_s": r.wall_s,
                "ratio": a.wall_s / r.wall_s,
                "cpu_ratio": a.cpu_s / r.cpu_s,
                "advisor_first_token_s": a.first_token_s,
                "raw_first_token_s": r.first_token_s,
                "decode_ratio": (a.wall_s - a.first_token_s) / max(1e-9, r.wall_s - r.first_token_s),
                "tokens": tokens,
                "raw_tokens": gen.count_tokens(r.text),
                "same_text": a.text == r.text,
                "prompt_tokens": sum(gen.count_tokens(m["content"]) for m in messages),
            }
        )
        log(f"  generation pair {i + 1}: advisor/raw {pairs[-1]['ratio']:.3f}")
    ratio = median([p["ratio"] for p in pairs])
    out = {
        "threads": threads,
        "n_ctx": s.n_ctx,
        "max_tokens": max_tokens,
        "pairs": pairs,
        "ratio_median": ratio,
        "cpu_ratio_median": median([p["cpu_ratio"] for p in pairs]),
        "decode_ratio_median": median([p["decode_ratio"] for p in pairs]),
        "advisor_tokens_per_s_median": median([p["tokens"] / p["advisor_s"] for p in pairs]),
        "raw_tokens_per_s_median": median([p["raw_tokens"] / p["raw_s"] for p in pairs]),
        "all_same_text": all(p["same_text"] for p in pairs),
    }
    res.sections["generation"] = out
    res.target(
        f"generation: advisor / raw llama-cpp wall ({len(pairs)} pairs, median)",
        ratio,
        "<= 1.05",
        ratio <= 1.05,
        "x",
    )
    res.note(
        "generation: CPU-time ratio; decode-only ratio; tokens/s advisor vs raw",
        f"{out['cpu_ratio_median']:.3f}x; {out['decode_ratio_median']:.3f}x; "
        f"{out['advisor_tokens_per_s_median']:.1f} vs {out['raw_tokens_per_s_median']:.1f} "
        f"(same text: {'yes' if out['all_same_text'] else 'NO'}; {threads} thread(s), max_tokens {max_tokens})",
    )


# -- 4. answer latency ---------------------------------------------------------


def _cold_ask(exe: str, question: str, home: Path, cache: bool) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``advisor ask --json`` process and what it printed."""
    env = subprocess_env({"ADVISOR_PROMPT_CACHE": "true" if cache else "false"})
    t = time.perf_counter()
    proc = subprocess.run(
        [exe, "ask", question, "--home", str(home), "--json"], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"advisor ask failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return wall, json.loads(proc.stdout)


def _shown(printed: dict[str, Any]) -> tuple[Any, ...]:
    """What a reader sees of an answer: its text, mode and each quote's translations."""
    glosses = [(c.get("translation"), c.get("english_translation")) for c in printed["citations"]]
    return printed["answer"], printed["mode"], tuple(glosses)


def bench_cold(ctx: Context, res: Results) -> None:
    exe = advisor_bin()
    base = ctx.workdir / "cold-base"
    subprocess.run([exe, "ingest", "--home", str(base)], env=subprocess_env(), capture_output=True, check=True)
    chosen = spread([x for x in ctx.scenarios if x.in_scope], ctx.plan.cold_pairs)
    warm = ctx.workdir / "cold-warm"  # earlier questions leave the prompt starts saved
    shutil.copytree(base, warm)
    for sc in chosen:
        _cold_ask(exe, sc.question, warm, cache=True)
    rows: list[dict[str, Any]] = []
    for n, sc in enumerate(chosen):
        walls: dict[bool, float] = {}
        shown: dict[bool, tuple[Any, ...]] = {}
        for cache in (True, False) if n % 2 == 0 else (False, True):
            home = ctx.workdir / f"cold-{n}-{'on' if cache else 'off'}"
            shutil.copytree(base, home)
            if cache:
                shutil.copytree(warm / "prompt-states", home / "prompt-states")
            walls[cache], printed = _cold_ask(exe, sc.question, home, cache)
            shown[cache] = _shown(printed)
        rows.append(
            {"id": sc.id, "with_s": walls[True], "without_s": walls[False], "ratio": walls[True] / walls[False]}
        )
        rows[-1]["same_answer"] = shown[True] == shown[False]
        log(f"cold {sc.id}: {walls[True]:.1f} s with saved prompt starts, {walls[False]:.1f} s without")
    same = all(r["same_answer"] for r in rows)
    out = {
        "pairs": rows,
        "with_s": median([r["with_s"] for r in rows]),
        "without_s": median([r["without_s"] for r in rows]),
        "ratio_median": median([r["ratio"] for r in rows]),
        "same_answers": same,
    }
    res.sections["cold"] = out
    res.note(
        f"cold `advisor ask` ({len(rows)} pairs): median s with / without saved prompt starts, ratio",
        f"{out['with_s']:.1f} / {out['without_s']:.1f}, {out['ratio_median']:.2f}x (same answers: {same})",
    )
    share = sum(r["same_answer"] for r in rows) / len(rows) if rows else math.nan
    res.target("cold ask: share of pairs with the same answer either way", share, "= 1", same, "share")


def bench_answer(ctx: Context, res: Results) -> None:
    adv = ctx.shipped()
    t0 = time.perf_counter()
    gen = adv.generator
    load_s = time.perf_counter() - t0
    gen.chat([{"role": "user", "content": "Hello"}], 4)  # warm-up
    chosen = spread([x for x in ctx.scenarios if x.in_scope], ctx.plan.answer_questions)
    rows: list[dict[str, Any]] = []
    for sc in chosen:
        fresh_queries(adv.embedder)
        firsts: list[float] = []
        t = time.perf_counter()
        answer = adv.ask(sc.question, llm=True, on_token=lambda piece, seen=firsts: seen.append(time.perf_counter()))
        wall = (time.perf_counter() - t) * 1000
        first_ms = (firsts[0] - t) * 1000 if firsts else wall
        tokens = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens}
        rows.append({"id": sc.id, "mode": answer.mode, "wall_ms": wall, "first_token_ms": first_ms, **answer.timings})
        rows[-1].update(tokens)  # fields of the answer since timings hold milliseconds only
    keys = (
        "retrieve_ms",
        "translate_ms",
        "draft_ms",
        "check_ms",
        "first_token_ms",
        "wall_ms",
        "prompt_tokens",
        "completion_tokens",
        "total_ms",
    )
    medians = {key: median([r[key] for r in rows if key in r] or [0.0]) for key in keys}
    decode = [r["completion_tokens"] / (r["generate_ms"] / 1000) for r in rows if r.get("generate_ms")]
    prefill = [r["prompt_tokens"] / (r["prefill_ms"] / 1000) for r in rows if r.get("prefill_ms")]
    out = {
        "model_load_s": load_s,
        "questions": rows,
        "medians": medians,
        "decode_tokens_per_s_median": median(decode),
        "prefill_tokens_per_s_median": median(prefill),
        "threads": adv.settings.n_threads or os.cpu_count(),
    }
    res.sections["answer"] = out
    m = medians
    modes = {mode: sum(r["mode"] == mode for r in rows) for mode in ("llm", "extractive", "abstain")}
    res.note(
        f"answer ({len(rows)} q, modes {modes}) median ms: retrieve / translate / draft / check / total",
        f"{m['retrieve_ms']:.0f} / {m['translate_ms']:.0f} / {m['draft_ms']:.0f} / {m['check_ms']:.0f} / "
        f"{m['total_ms']:.0f} ({m['prompt_tokens']:.0f} prompt, {m['completion_tokens']:.0f} completion tokens)",
    )
    res.target(
        "answer: median end-to-end (Advisor.ask, llm)", m["wall_ms"] / 1000, "<= 20", m["wall_ms"] <= 20_000, "s"
    )
    res.target(
        "answer: median time to the first streamed token",
        m["first_token_ms"] / 1000,
        "<= 8",
        m["first_token_ms"] <= 8_000,
        "s",
    )


# -- 6. ingest throughput ------------------------------------------------------


def replicate_corpus(target: Path, copies: int) -> Path:
    """The bundled corpus ``copies`` times over, with distinct file names and ids."""
    import tomllib

    source = bundled_corpus()
    manifest = tomllib.loads((source / MANIFEST).read_text(encoding="utf-8"))
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in range(copies):
        for entry in manifest["document"]:
            name = f"{Path(entry['file']).stem}-r{r:02d}.txt"
            shutil.copyfile(source / entry["file"], target / name)
            lines += [
                "[[document]]",
                f"file = {json.dumps(name)}",
                f"id = {json.dumps(entry['id'] + f'-r{r:02d}')}",
                f"title = {json.dumps(entry.get('title', ''), ensure_ascii=False)}",
                f"lang = {json.dumps(entry.get('lang', ''))}",
                "",
            ]
    (target / MANIFEST).write_text("\n".join(lines), encoding="utf-8")
    return target


def bench_ingest(ctx: Context, res: Results) -> None:
    emb = ctx.embedder
    folder = replicate_corpus(ctx.workdir / "replicated", ctx.plan.ingest_replicas)
    settings = load_settings(home=ctx.workdir / "ingest-settings")
    found, _ = discover([folder])
    texts: list[str] = []
    for item in found:
        doc = read_document(item, item.path.read_bytes())
        texts += [c.embed_text for c in make_chunks(doc, emb, settings.chunk_tokens)]
    size = settings.embed_batch
    emb.embed_documents(texts[:size])  # warm-up
    # the words word matching embeds (none when the embedder has no calibrated threshold)
    vocabulary: dict[str, None] = {}
    if word_threshold(settings, emb) is not None:
        for text in texts:
            vocabulary.update(dict.fromkeys(content_words(text)))

    def run_raw(row: dict[str, float]) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), size):
            emb.embed_documents(texts[i : i + size])
        if vocabulary:
            emb.embed_documents(list(vocabulary))
        row.update(raw_s=time.perf_counter() - t0, raw_cpu_s=time.process_time() - c0)

    def run_advisor(row: dict[str, float]) -> None:
        adv = Advisor(home=ctx.workdir / f"ingest-{len(pairs)}", embedder=emb)
        t0, c0 = time.perf_counter(), time.process_time()
        first = adv.ingest([folder])
        row.update(first_s=time.perf_counter() - t0, first_cpu_s=time.process_time() - c0)
        t1 = time.perf_counter()
        again = adv.ingest([folder])
        row.update(reingest_s=time.perf_counter() - t1, chunks=float(first.chunks_added))
        if again.added or again.updated or first.chunks_added != len(texts):
            raise RuntimeError(f"unexpected ingest reports: {first} then {again}")
        adv.close()

    pairs: list[dict[str, float]] = []
    for i in range(ctx.plan.ingest_pairs):
        row: dict[str, float] = {}
        for fn in (run_advisor, run_raw) if i % 2 == 0 else (run_raw, run_advisor):
            fn(row)
        row.update(
            advisor_chunks_per_s=len(texts) / row["first_s"],
            raw_chunks_per_s=len(texts) / row["raw_s"],
            ratio=row["raw_s"] / row["first_s"],
            cpu_ratio=row["raw_cpu_s"] / row["first_cpu_s"],
            reingest_ratio=row["reingest_s"] / row["first_s"],
        )
        pairs.append(row)
        log(
            f"  ingest pair {i + 1}: {row['ratio']:.2f}x raw (CPU {row['cpu_ratio']:.2f}x), re-ingest "
            f"{row['reingest_ratio']:.3f}x"
        )
    ratio = median([p["ratio"] for p in pairs])
    again = median([p["reingest_ratio"] for p in pairs])
    out = {
        "replicas": ctx.plan.ingest_replicas,
        "documents": len(found),
        "chunks": len(texts),
        "vocabulary": len(vocabulary),
        "batch": size,
        "pairs": pairs,
        "ratio_median": ratio,
        "cpu_ratio_median": median([p["cpu_ratio"] for p in pairs]),
        "ratio_of_totals": sum(p["raw_s"] for p in pairs) / sum(p["first_s"] for p in pairs),
        "reingest_ratio_median": again,
        "advisor_chunks_per_s_median": median([p["advisor_chunks_per_s"] for p in pairs]),
        "raw_chunks_per_s_median": median([p["raw_chunks_per_s"] for p in pairs]),
    }
    res.sections["ingest"] = out
    label = f"ingest chunks/s vs raw embedder ({len(texts)} chunks + {len(vocabulary)} words)"
    res.target(label, ratio, ">= 0.8", ratio >= 0.8, "x")
    res.target("unchanged re-ingest / first ingest", again, "<= 0.1", again <= 0.1, "x")
    res.note(
        "ingest chunks/s advisor vs raw; CPU-time ratio; ratio of totals; first vs re-ingest",
        f"{out['advisor_chunks_per_s_median']:.0f} vs {out['raw_chunks_per_s_median']:.0f}; "
        f"{out['cpu_ratio_median']:.2f}x; {out['ratio_of_totals']:.2f}x; "
        f"{median([p['first_s'] for p in pairs]):.1f} s vs {median([p['reingest_s'] for p in pairs]):.2f} s",
    )


def converted_corpus(target: Path, copies: int) -> tuple[Path, list[str]]:
    """The bundled articles as HTML, Word and (with fpdf2) PDF files, ``copies`` of each; and the kinds written."""
    import html

    import docx

    target.mkdir(parents=True, exist_ok=True)
    articles = [read_document(f, f.path.read_bytes()) for f in discover([bundled_corpus()])[0]]
    kinds = ["html", "docx"]
    try:
        from fpdf import FPDF
    except ImportError:
        log("  fpdf2 is not installed: no PDF files (pip install fpdf2)")
        FPDF = None
    else:
        kinds.append("pdf")
    for r in range(copies):
        for doc in articles:
            paragraphs = [p.strip() for p in doc.text.splitlines() if p.strip()]
            stem = target / f"{Path(doc.path).stem}-r{r:02d}"
            body = "\n".join(f"<p>{html.escape(p)} r{r:02d}</p>" for p in paragraphs)
            stem.with_suffix(".html").write_text(f"<html><body><main>{body}</main></body></html>", encoding="utf-8")
            word = docx.Document()
            for p in paragraphs:
                word.add_paragraph(f"{p} r{r:02d}")
            word.save(str(stem.with_suffix(".docx")))
            if FPDF is not None:
                pdf = FPDF()
                pdf.add_page()
                pdf.set_font("Helvetica", size=11)
                for p in paragraphs:  # the core fonts are Latin-1
                    line = f"{p} r{r:02d}".encode("latin-1", "replace").decode("latin-1")
                    pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
                pdf.output(str(stem.with_suffix(".pdf")))
    return target, kinds


def bench_formats(ctx: Context, res: Results) -> None:
    converted, kinds = converted_corpus(ctx.workdir / "converted", ctx.plan.formats_replicas)
    plain = replicate_corpus(ctx.workdir / "plain", ctx.plan.formats_replicas * len(kinds))
    emb = ctx.embedder

    def run(folder: Path, tag: str, row: dict[str, float]) -> None:
        adv = Advisor(home=ctx.workdir / f"formats-{tag}-{len(pairs)}", embedder=emb)
        t0 = time.perf_counter()
        first = adv.ingest([folder])
        t1 = time.perf_counter()
        again = adv.ingest([folder])
        t2 = time.perf_counter()
        if first.warnings or again.added or again.updated or again.unchanged != first.added:
            raise RuntimeError(f"unexpected ingest reports for {folder}: {first} then {again}")
        row.update({f"{tag}_first_s": t1 - t0, f"{tag}_reingest_s": t2 - t1, f"{tag}_docs": float(first.added)})
        adv.close()

    pairs: list[dict[str, float]] = []
    for i in range(ctx.plan.formats_pairs):
        row: dict[str, float] = {}
        order = [(converted, "converted"), (plain, "text")]
        for folder, tag in order if i % 2 == 0 else order[::-1]:
            run(folder, tag, row)
        row["converted_ratio"] = row["converted_reingest_s"] / row["converted_first_s"]
        row["text_ratio"] = row["text_reingest_s"] / row["text_first_s"]
        pairs.append(row)
        log(
            f"  formats pair {i + 1}: re-ingest / first: converted {row['converted_ratio']:.3f}x, "
            f"text {row['text_ratio']:.3f}x"
        )
    converted_ratio = median([p["converted_ratio"] for p in pairs])
    text_ratio = median([p["text_ratio"] for p in pairs])
    relative = median([p["converted_ratio"] / p["text_ratio"] for p in pairs])
    res.sections["formats"] = {
        "kinds": kinds,
        "documents": {"converted": pairs[0]["converted_docs"], "text": pairs[0]["text_docs"]},
        "pairs": pairs,
        "converted_reingest_ratio_median": converted_ratio,
        "text_reingest_ratio_median": text_ratio,
        "converted_over_text_median": relative,
    }
    res.target(
        f"unchanged re-ingest / first ingest, {'+'.join(kinds)} files",
        converted_ratio,
        "<= 0.1",
        converted_ratio <= 0.1,
        "x",
    )
    res.note(
        "formats: re-ingest / first ingest, converted vs text (median per pair); first ingest; re-ingest",
        f"{converted_ratio:.3f}x vs {text_ratio:.3f}x ({relative:.2f}x); "
        f"{median([p['converted_first_s'] for p in pairs]):.1f} s vs "
        f"{median([p['text_first_s'] for p in pairs]):.1f} s; "
        f"{median([p['converted_reingest_s'] for p in pairs]):.3f} s vs "
        f"{median([p['text_reingest_s'] for p in pairs]):.3f} s",
    )


# -- 7. peak RSS ---------------------------------------------------------------
# -- 7. serving overhead --------------------------------------------------------


def bench_serve(ctx: Context, res: Results) -> None:
    import http.client
    from urllib.parse import urlsplit

    from advisor.server import start_in_thread

    adv = ctx.shipped()
    srv = start_in_thread(adv, llm=False)
    url = urlsplit(srv.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=120)

    def via_http(question: str) -> tuple[str, float]:
        body = json.dumps({"question": question, "llm": False})
        conn.request("POST", "/api/ask", body, {"content-type": "application/json"})
        reply = conn.getresponse()
        data = json.loads(reply.read())
        if reply.status != 200:
            raise RuntimeError(f"/api/ask answered {reply.status}: {data}")
        return str(data["answer"]), float(data["timings"]["total_ms"])

    def via_api(question: str) -> tuple[str, float]:
        answer = adv.ask(question, llm=False)
        return answer.text, answer.timings["total_ms"]

    calls: dict[str, Callable[[str], tuple[str, float]]] = {"api": via_api, "http": via_http}
    chosen = [s.question for s in spread([x for x in ctx.scenarios if x.in_scope], 12)]
    try:
        for q in chosen[:3]:  # warm-up: both paths, code and caches
            via_api(q)
            via_http(q)
        pairs: list[dict[str, float]] = []
        for n in range(ctx.plan.serve_pairs):
            question = chosen[n % len(chosen)]
            order = ["api", "http"] if n % 2 == 0 else ["http", "api"]
            row: dict[str, float] = {}
            texts: dict[str, str] = {}
            for name in order:
                adv._answers.clear()  # every call answers afresh (no answer cache)
                fresh_queries(adv.embedder)
                t0, c0 = time.perf_counter(), time.process_time()  # CPU of every thread: server, worker, client
                texts[name], inside = calls[name](question)
                row[name] = (time.perf_counter() - t0) * 1000
                row[f"{name}_cpu"] = (time.process_time() - c0) * 1000
                row[f"{name}_outside"] = row[name] - inside  # wall time outside search + answer
            if texts["api"] != texts["http"]:
                raise RuntimeError(f"/api/ask and Advisor.ask answered {question!r} differently")
            pairs.append(row)
    finally:
        conn.close()
        srv.stop()
    api_p50 = median([p["api"] for p in pairs])
    added = median([p["http_outside"] for p in pairs]) - median([p["api_outside"] for p in pairs])
    out = {
        "pairs": len(pairs),
        "api_ms": summary([p["api"] for p in pairs]),
        "http_ms": summary([p["http"] for p in pairs]),
        "ratio_median": median([p["http"] / p["api"] for p in pairs]),
        "cpu_ratio_median": median([p["http_cpu"] / p["api_cpu"] for p in pairs]),
        "added_ms": added,  # serving's own time: outside-the-answer time, HTTP minus Python API
        "added_share_of_api_p50": added / api_p50,
        "rows": pairs,
    }
    res.sections["serve"] = out
    ratio = out["ratio_median"]
    res.target(
        f"serve: /api/ask / Advisor.ask wall, extractive ({len(pairs)} pairs)", ratio, "<= 1.05", ratio <= 1.05, "x"
    )
    res.note(
        "serve: answer median Advisor.ask / POST /api/ask; CPU-time ratio; time serving adds (share)",
        f"{api_p50:.0f} ms / {out['http_ms']['p50']:.0f} ms; {out['cpu_ratio_median']:.3f}x; "
        f"{added:.1f} ms ({100 * out['added_share_of_api_p50']:.1f}%)",
    )


# -- 8. peak RSS ---------------------------------------------------------------


def peak_rss(command: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command`` under its own wrapper process; its peak RSS in KiB."""
    done = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *command], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result['rc']}")
    return result


def bench_rss(ctx: Context, res: Results) -> None:
    exe = advisor_bin()
    home = ctx.workdir / "rss-home"
    extra = {"ADVISOR_HOME": str(home)}
    if ctx.threads:
        extra["ADVISOR_N_THREADS"] = str(ctx.threads)
    env = subprocess_env(extra)
    question = "My contact knows the hiring manager, when should I ask for a good word?"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "advisor ingest": [exe, "ingest"],
        "advisor ask --no-llm": [exe, "ask", question, "--no-llm"],
        "advisor ask (model)": [exe, "ask", question],
    }
    out: dict[str, Any] = {}
    for name, command in commands.items():
        runs = [peak_rss(command, env) for _ in range(1 if name == "advisor ingest" else ctx.plan.rss_runs)]
        out[name] = {
            "maxrss_mib": max(r["maxrss_kib"] for r in runs) / 1024,
            "wall_s_median": median([r["wall_s"] for r in runs]),
        }
    res.sections["rss"] = out
    res.note(
        "peak RSS: ingest / ask --no-llm / ask with model",
        " / ".join(f"{out[n]['maxrss_mib']:.0f} MiB" for n in list(commands)[1:]),
    )


# -- main ----------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Context, Results], None]] = {
    "startup": bench_startup,
    "retrieval": bench_retrieval,
    "synthetic": bench_synthetic,
    "generation": bench_generation,
    "cold": bench_cold,
    "answer": bench_answer,
    "ingest": bench_ingest,
    "formats": bench_formats,
    "serve": bench_serve,
    "rss": bench_rss,
}


def markdown(res: Results) -> str:
    lines = ["| target | measured | goal | result |", "|---|---|---|---|"]
    for t in res.targets:
        value = f"{t.value:.3f} s" if t.unit == "s" else f"{t.value:.1f} ms" if t.unit == "ms" else f"{t.value:.3f}x"
        if t.unit == "share":
            value = f"{t.value:.2f}"
        lines.append(f"| {t.name} | {value} | {t.goal} | {'PASS' if t.ok else 'FAIL'} |")
    if res.info:
        lines += ["", "| measurement | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in res.info]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark advisor (see the module docstring for what each number means).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sections: " + ", ".join(SECTIONS),
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for bench.json (default bench-out)")
    parser.add_argument("--quick", action="store_true", help="~1-2 minute smoke run (10k synthetic chunks, fewer runs)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of the sections to run")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: advisor's, all cores)")
    parser.add_argument(
        "--gen-threads", type=int, default=1, help="threads of both models in the generation section (default 1)"
    )
    parser.add_argument("--synthetic-chunks", type=int, default=None, help="size of the synthetic store")
    parser.add_argument("--hybrid", action="store_true", help="also time hybrid (BM25) retrieval at synthetic size")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores (printed at the end)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--round-trip",
        action="store_true",
        help="answers with translation_round_trip on (every translation also translated back and checked)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for key in [k for k in os.environ if k.startswith("ADVISOR_")]:
        del os.environ[key]  # measure the built-in defaults
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    plan = QUICK if args.quick else Plan()
    if args.synthetic_chunks:
        plan = Plan(**{**asdict(plan), "synthetic_chunks": args.synthetic_chunks})
    wanted = [s for s in SECTIONS if s in args.sections.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="advisor-bench-"))
    ctx = Context(plan, workdir, args.threads)
    if args.round_trip:
        ctx.overrides["translation_round_trip"] = True
    ctx.hybrid = args.hybrid
    ctx.gen_threads = args.gen_threads
    res = Results()
    res.meta = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "plan": asdict(plan),
        "threads": args.threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "loadavg": {},
        "section_s": {},
    }
    started = time.perf_counter()
    try:
        for name in wanted:
            log(f"{name} ...")
            res.meta["loadavg"][f"{name}_before"] = os.getloadavg()
            t0 = time.perf_counter()
            RUNNERS[name](ctx, res)
            res.meta["section_s"][name] = time.perf_counter() - t0
            res.meta["loadavg"][f"{name}_after"] = os.getloadavg()
            log(f"{name} done in {res.meta['section_s'][name]:.0f} s")
    finally:
        res.meta["wall_s"] = time.perf_counter() - started
        if args.keep:
            log(f"kept the stores in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": res.meta,
        "targets": [asdict(t) for t in res.targets],
        "info": dict(res.info),
        "sections": res.sections,
    }
    (args.out / "bench.json").write_text(json.dumps(clean(payload), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(markdown(res))
    print(f"\n{len(wanted)} section(s) in {res.meta['wall_s']:.0f} s; details in {args.out / 'bench.json'}")
    return 1 if args.strict and not all(t.ok for t in res.targets) else 0


if __name__ == "__main__":
    sys.exit(main())
