"""One writer at a time, readers never blocked, and threads sharing one advisor or one local model."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from conftest import (
    ADVISOR_BIN,
    CORPUS,
    FakeEmbedder,
    assert_no_traceback,
    read_source,
    replicate_corpus,
    run_cli,
)

from advisor.api import Advisor

QUESTION = "My contact knows the hiring manager, when should I ask?"


def _wait_for_lock_holder(home: Path, started: float) -> int:
    """The pid of the process holding the store's write lock, once one does."""
    pid_file = home / ".advisor.lock.pid"
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() - started < 60, "no writer ever took the lock"
        time.sleep(0.02)
    return int(pid_file.read_text().strip())


def _assert_answer_quotes_its_sources(reader: subprocess.CompletedProcess[str]) -> None:
    assert reader.returncode == 0, reader.stderr
    data = json.loads(reader.stdout)
    assert data["citations"] and not data["abstained"]
    for c in data["citations"]:
        assert read_source(c["path"])[c["start"] : c["end"]] == c["text"]


def _assert_store_has_each_chunk_once(home: Path, documents: int) -> None:
    adv = Advisor(home=home, embedder=FakeEmbedder())
    chunks = list(adv.store.all_chunks())
    assert len({c.chunk_id for c in chunks}) == len(chunks) == adv.store.count()
    assert len({c.meta["doc_id"] for c in chunks}) == documents
    adv.close()


def test_two_writers_one_is_refused_and_a_reader_answers_meanwhile(tmp_path: Path, hook_env: dict[str, str]) -> None:
    home = tmp_path / "home"
    first = run_cli(["ingest", "--embedder", "test-fake", str(CORPUS)], home, hook_env)
    assert first.returncode == 0, first.stderr
    extra = replicate_corpus(tmp_path / "extra", copies=3)  # 15 files, one embedding batch each
    slow_env = {**hook_env, "ADVISOR_HOME": str(home), "HARDENING_EMBED_DELAY": "0.4"}
    writer_cmd = [str(ADVISOR_BIN), "ingest", "--embedder", "test-fake", str(extra)]

    # how long the CLI takes to reach the lock, on this machine, right now
    t0 = time.monotonic()
    run_cli(["ask", " "], home, hook_env)
    startup = time.monotonic() - t0

    started = time.monotonic()
    writers = [
        subprocess.Popen(writer_cmd, env=slow_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    exited: dict[int, float] = {}

    def note_exit(proc: subprocess.Popen[str]) -> None:
        proc.wait()
        exited[proc.pid] = time.monotonic()

    for w in writers:
        threading.Thread(target=note_exit, args=(w,), daemon=True).start()
    try:
        holder = _wait_for_lock_holder(home, started)
        assert holder in {w.pid for w in writers}
        winner = next(w for w in writers if w.pid == holder)
        loser = next(w for w in writers if w.pid != holder)

        # a reader, while the winner holds the lock and writes
        reader = run_cli(["ask", "--no-llm", "--json", "--embedder", "test-fake", QUESTION], home, hook_env)
        assert winner.poll() is None, "the writer finished before the reader: the test proves nothing"
        _assert_answer_quotes_its_sources(reader)

        _, err = loser.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while loser.pid not in exited and time.monotonic() < deadline:
            time.sleep(0.01)
        loser_elapsed = exited[loser.pid] - started
        assert winner.pid not in exited, "the winner finished before the loser gave up"
        assert_no_traceback(err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert loser.returncode == 5, (loser.returncode, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert f"pid {holder}" in lines[0] and str(home) in lines[0]
        # the lock wait is 2 s (api.py); the rest is interpreter start-up
        assert loser_elapsed - startup < 2.0 + 1.5, (loser_elapsed, startup)

        out, err = winner.communicate(timeout=120)
        assert winner.returncode == 0, err
        assert "15 added" in out
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
            w.communicate(timeout=30)
    _assert_store_has_each_chunk_once(home, 5 + 15)


def test_threads_sharing_a_fresh_advisor_load_it_once(tmp_home: Path, corpus_dir: Path) -> None:
    """Regression: two threads asking a fresh advisor both opened Chroma at once and both failed
    (StoreError: "... move the directory away"), and both ingested the empty store."""
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), corpus=[corpus_dir], abstain_threshold=0.0)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def ask() -> None:
        start.wait()
        try:
            adv.ask("When should I ask my contact for a referral?", llm=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(adv.documents()) == 5
    adv.close()


def test_the_local_model_answers_one_thread_at_a_time() -> None:
    """Regression: two threads generating at once on one llama.cpp context aborted the process."""
    from advisor.generation import LlamaCppGenerator

    inside = threading.Semaphore(1)
    overlaps: list[int] = []

    class OneAtATime:
        n_tokens = 0
        input_ids = np.zeros(0, dtype=np.intc)

        def tokenize(self, data: bytes, **kwargs: Any) -> list[int]:
            return list(range(len(data.split())))

        def create_completion(self, **kwargs: Any) -> Any:
            if not inside.acquire(blocking=False):
                overlaps.append(1)
                return iter([])
            try:
                import time

                time.sleep(0.05)
                return iter([{"choices": [{"text": "ok", "finish_reason": "stop"}]}])
            finally:
                inside.release()

    gen = object.__new__(LlamaCppGenerator)
    gen._llm, gen.has_template, gen.temperature, gen.seed = OneAtATime(), False, 0.0, 0
    gen.n_ctx, gen._pool, gen._grammars = 4096, [gen._llm], {}
    gen._lock = threading.Lock()
    gen._head_logits = {}
    gen._prepare = lambda *args, **kwargs: None  # type: ignore[method-assign]  # the fake keeps no KV cache
    threads = [threading.Thread(target=gen.chat, args=([{"role": "user", "content": "hi"}], 8)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
