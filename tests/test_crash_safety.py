"""Crash safety: SIGKILL an ingest at a random moment (or a document's update), resume, compare.

The long variants (many kills) are marked ``slow`` and run only with ``ADVISOR_SLOW=1``.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
import pytest
from conftest import (
    CORPUS,
    PYTHON,
    TESTS,
    FakeEmbedder,
    clean_env,
    needs_slow,
    read_source,
    replicate_corpus,
)
from hypothesis import strategies as st

from advisor.api import Advisor


@dataclass(frozen=True)
class Snapshot:
    """What a store holds: chunk id -> (text, metadata) and id -> embedding."""

    chunks: dict[str, tuple[str, dict[str, Any]]]
    vectors: dict[str, np.ndarray]


def snapshot(adv: Advisor) -> Snapshot:
    chunks = {c.chunk_id: (c.text, c.meta) for c in adv.store.all_chunks()}
    return Snapshot(chunks, adv.store.embeddings(sorted(chunks)))


def assert_store_equals(adv: Advisor, reference: Snapshot, ignore_meta: Sequence[str] = ()) -> None:
    """The store holds exactly the reference chunks, intact, findable and not orphaned."""
    store = adv.store
    listed = list(store.all_chunks())
    ids = [c.chunk_id for c in listed]
    assert len(ids) == len(set(ids)), "duplicate chunk ids"
    assert len(ids) == store.count()
    missing, extra = set(reference.chunks) - set(ids), set(ids) - set(reference.chunks)
    assert not missing and not extra, f"{len(missing)} chunk(s) missing, {len(extra)} extra"
    for c in listed:
        text, meta = reference.chunks[c.chunk_id]
        assert c.text == text, c.chunk_id
        mine = {k: v for k, v in c.meta.items() if k not in ignore_meta}
        assert mine == {k: v for k, v in meta.items() if k not in ignore_meta}, c.chunk_id
        # no orphans: the file exists, has the bytes the chunk was cut from, and holds it verbatim
        path = Path(c.meta["path"])
        assert path.is_file(), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == c.meta["doc_sha"], path
        assert read_source(path)[c.meta["start"] : c.meta["end"]] == c.text
    got = store.get(ids)
    assert sorted(g.chunk_id for g in got) == sorted(ids)
    vectors = store.embeddings(ids)
    assert set(vectors) == set(ids)
    for cid in ids:
        np.testing.assert_allclose(vectors[cid], reference.vectors[cid], atol=1e-6)
        top = store.query(vectors[cid], 1)
        assert top and top[0].chunk_id == cid, (cid, top[0].chunk_id if top else None)


CHILD_INGEST = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from conftest import FakeEmbedder
    from advisor.api import Advisor

    home, corpus = sys.argv[2], sys.argv[3]
    adv = Advisor(home=home, embedder=FakeEmbedder())
    adv.store  # chromadb imported and the store open before the clock starts
    if len(sys.argv) > 4:  # an update: first the old version, then the changed file
        adv.ingest([corpus])
        Path(sys.argv[4]).write_bytes(Path(sys.argv[5]).read_bytes())
    print("ingesting", flush=True)
    adv.ingest([corpus])
    print("done", flush=True)
    """
)


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line.strip())
    lines.put("<eof>")


def kill_during_ingest(args: Sequence[str], delay: float | None) -> tuple[str, float]:
    """Run CHILD_INGEST and SIGKILL it ``delay`` s after it starts ingesting (None: let it finish).

    Returns 'killed' or 'finished', and the seconds from 'ingesting' to the end.
    """
    proc = subprocess.Popen(
        [PYTHON, "-c", CHILD_INGEST, str(TESTS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=120)
            if line == "ingesting":
                started = time.monotonic()
                break
            if line == "<eof>":
                proc.wait(timeout=60)
                pytest.fail(f"the ingest child died before ingesting: {proc.stderr.read() if proc.stderr else ''}")
        if delay is not None:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=300)
        seconds = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    if delay is None:
        assert proc.returncode == 0, "the uninterrupted ingest child failed"
    return ("killed" if proc.returncode == -signal.SIGKILL else "finished"), seconds


def run_kills(n_examples: int, body: Callable[[float], str], label: str) -> list[str]:
    """``body(fraction)`` for an explicit mid-way kill plus ``n_examples`` drawn by hypothesis; their outcomes."""
    outcomes: list[str] = []

    @hypothesis.settings(
        max_examples=n_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.example(fraction=0.5)
    @hypothesis.given(fraction=st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
    def kills(fraction: float) -> None:
        outcomes.append(body(fraction))

    kills()
    print(f"{label} outcomes: {sorted(outcomes)}")
    return outcomes


@dataclass(frozen=True)
class CrashCorpus:
    corpus: Path
    reference: Snapshot
    seconds: float  # how long an uninterrupted child takes from 'ingesting' to its end


@pytest.fixture(scope="module")
def crash_corpus(tmp_path_factory: pytest.TempPathFactory) -> CrashCorpus:
    """30 documents (the articles x 6, tagged) and the store a clean, uninterrupted ingest makes of them."""
    root = tmp_path_factory.mktemp("crash")
    corpus = replicate_corpus(root / "corpus", copies=6)
    _, seconds = kill_during_ingest([str(root / "reference-home"), str(corpus)], None)
    adv = Advisor(home=root / "reference-home", embedder=FakeEmbedder())
    reference = snapshot(adv)
    assert len({m["doc_id"] for _, m in reference.chunks.values()}) == 30
    vecs = np.stack([reference.vectors[c] for c in sorted(reference.vectors)])
    sims = vecs @ vecs.T - 2 * np.eye(len(vecs))
    assert float(sims.max()) < 0.9999, "the crash corpus needs distinct chunks for the top-1 check"
    adv.close()
    return CrashCorpus(corpus, reference, seconds)


def crash_and_resume(crash_corpus: CrashCorpus, home: Path, fraction: float) -> str:
    """Kill an ingest ``fraction`` of the way, resume it, compare; how the kill landed."""
    outcome, _ = kill_during_ingest([str(home), str(crash_corpus.corpus)], fraction * crash_corpus.seconds)
    adv = Advisor(home=home, embedder=FakeEmbedder())
    stored = adv.store.count()
    if outcome == "killed":
        total = len(crash_corpus.reference.chunks)
        outcome = "killed-empty" if stored == 0 else ("killed-partial" if stored < total else "killed-after-writes")
    report = adv.ingest([crash_corpus.corpus])  # resume: no StoreLockedError from the dead child
    assert not report.warnings, report.warnings
    assert_store_equals(adv, crash_corpus.reference)
    assert adv.ingest([crash_corpus.corpus]).chunks_added == 0  # and it is now complete
    assert adv.retrieve("LinkedIn Interviewer Vorstellungsgespräch", k=3)
    adv.close()
    return outcome


def _kill_test(crash_corpus: CrashCorpus, tmp_path_factory: pytest.TempPathFactory, n: int) -> list[str]:
    return run_kills(n, lambda f: crash_and_resume(crash_corpus, tmp_path_factory.mktemp("killed-home"), f), "kill")


def test_an_ingest_killed_at_a_random_moment_resumes_to_the_clean_result(
    crash_corpus: CrashCorpus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outcomes = _kill_test(crash_corpus, tmp_path_factory, 2)  # + the explicit mid-way kill = 3
    assert len(outcomes) == 3


@pytest.mark.slow
@needs_slow
def test_twenty_kills_each_resume_to_the_clean_result(
    crash_corpus: CrashCorpus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outcomes = _kill_test(crash_corpus, tmp_path_factory, 20)  # + the explicit one = 21
    assert len(outcomes) >= 20
    assert sum(o == "killed-partial" for o in outcomes) >= 3, outcomes  # the kills did land mid-write


@dataclass(frozen=True)
class UpdateCorpus:
    template: Path  # the corpus before the change (with a corpus.toml: ids do not depend on paths)
    changed_name: str
    new_text: Path
    reference: Snapshot  # a clean ingest of the corpus after the change
    seconds: float  # how long an uninterrupted child takes to re-ingest the changed file


@pytest.fixture(scope="module")
def update_corpus(tmp_path_factory: pytest.TempPathFactory) -> UpdateCorpus:
    root = tmp_path_factory.mktemp("update")
    template = root / "template"
    shutil.copytree(CORPUS, template)
    parts = [read_source(p) for p in sorted(replicate_corpus(root / "parts", copies=4).glob("*.txt"))]
    (template / "job-search-notes.txt").write_text("My job-search notes\n\n" + "\n\n".join(parts), encoding="utf-8")
    with (template / "corpus.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[document]]\nfile = "job-search-notes.txt"\nid = "job-search-notes"\nlang = "es"\n')
    new_text = root / "new-notes.txt"
    new_text.write_text(
        "My job-search notes, revised\n\nA new first paragraph about salary offers and thank-you notes.\n\n"
        + "\n\n".join(parts[::-1]),
        encoding="utf-8",
    )
    # an uninterrupted update in a child: how long it takes, and the store it ends with
    final = root / "final"
    shutil.copytree(template, final)
    home = root / "reference-home"
    _, seconds = kill_during_ingest([str(home), str(final), str(final / "job-search-notes.txt"), str(new_text)], None)
    ref = Advisor(home=home, embedder=FakeEmbedder())
    reference = snapshot(ref)
    notes = [m for _, m in reference.chunks.values() if m["doc_id"] == "job-search-notes"]
    assert len(notes) > 64, len(notes)  # the update spans several embedding batches
    ref.close()
    # the same state as a clean ingest of the changed corpus into an empty store
    clean = Advisor(home=root / "clean-home", embedder=FakeEmbedder())
    clean.ingest([final])
    assert set(snapshot(clean).chunks) == set(reference.chunks)
    clean.close()
    return UpdateCorpus(template, "job-search-notes.txt", new_text, reference, seconds)


def _update_kill_test(update_corpus: UpdateCorpus, tmp_path_factory: pytest.TempPathFactory, n: int) -> list[str]:
    def body(fraction: float) -> str:
        root = tmp_path_factory.mktemp("update-kill")
        corpus = root / "corpus"
        shutil.copytree(update_corpus.template, corpus)
        home = root / "home"
        args = [str(home), str(corpus), str(corpus / update_corpus.changed_name), str(update_corpus.new_text)]
        outcome, _ = kill_during_ingest(args, fraction * update_corpus.seconds)
        adv = Advisor(home=home, embedder=FakeEmbedder())
        if outcome == "killed":
            shas = {m["doc_sha"] for _, m in adv.store.metadata_index() if m["doc_id"] == "job-search-notes"}
            new_sha = hashlib.sha256(update_corpus.new_text.read_bytes()).hexdigest()
            outcome = "killed-" + "+".join(sorted("new" if sha == new_sha else "old" for sha in shas))
        adv.ingest([corpus])
        assert_store_equals(adv, update_corpus.reference, ignore_meta=("path", "root"))
        adv.close()
        return outcome

    return run_kills(n, body, "update kill")


def test_a_killed_update_of_one_document_resumes_to_the_clean_result(
    update_corpus: UpdateCorpus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert len(_update_kill_test(update_corpus, tmp_path_factory, 1)) == 2


@pytest.mark.slow
@needs_slow
def test_many_killed_updates_resume_to_the_clean_result(
    update_corpus: UpdateCorpus, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert len(_update_kill_test(update_corpus, tmp_path_factory, 10)) >= 10
