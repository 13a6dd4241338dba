"""The advisor against a real Chroma *server* (``chroma run``) on loopback.

A ``chroma run`` process is started on 127.0.0.1 and a free port for this
module, with its data in a temporary folder; the test waits (at most 30 s) for
its heartbeat, then ingests and asks through ``Advisor(chroma_url=...)``. The
server is always terminated (then killed if it does not stop) in the fixture's
teardown, and its log is shown when it fails to start.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, read_source

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
QUESTION = "My contact knows the hiring manager. When should I ask them to put in a good word for me?"


def _chroma_cli() -> str:
    beside = Path(sys.executable).with_name("chroma")
    if beside.is_file():
        return str(beside)
    found = shutil.which("chroma")
    if found is None:
        pytest.fail("the 'chroma' command (shipped with the chromadb package) is not installed")
    return found


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _heartbeat(url: str) -> bool:
    try:
        with _NO_PROXY.open(f"{url}/api/v2/heartbeat", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


def _release(adv: Any) -> None:
    """Close the advisor and the HTTP connections of its Chroma client.

    ``Advisor.close`` drops its store without closing the chromadb client, whose
    HTTP sessions (the client's and its admin client's; ``Client.close`` does not
    close them) would keep loopback sockets open until the interpreter exits.
    """
    store = adv._store
    client = getattr(store, "_client", None)
    adv.close()
    for api in (client, getattr(client, "_admin_client", None)):  # each has its own HTTP session
        session = getattr(getattr(api, "_server", None), "_session", None)
        if session is not None:
            session.close()
    close = getattr(client, "close", None)
    if callable(close):  # chromadb's Client.close: idempotent, releases the shared system
        close()


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory, offline_sitecustomize: Path) -> Iterator[str]:
    """A running ``chroma run`` server on 127.0.0.1; yields its URL, stops it afterwards."""
    cli = _chroma_cli()
    root = tmp_path_factory.mktemp("chroma-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(
        ANONYMIZED_TELEMETRY="False",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        # the CLI's Python side may not open non-loopback sockets either
        PYTHONPATH=os.pathsep.join(p for p in (str(offline_sitecustomize), env.get("PYTHONPATH", "")) if p),
    )
    log_path = root / "server.log"
    exited: int | None = None
    for _attempt in range(3):  # another process may grab the free port first
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [cli, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None and not _heartbeat(url):
                time.sleep(0.2)
            if proc.poll() is None and _heartbeat(url):
                yield url
                return
            exited = proc.poll()
            if exited is None:  # alive but silent: retrying would not help
                break
        finally:
            _stop(proc)
    log_text = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
    status = "still running" if exited is None else f"exited with code {exited}"
    pytest.fail(f"chroma run gave no heartbeat within {STARTUP_TIMEOUT:.0f} s ({status}); its log:\n{log_text}")


@pytest.fixture(scope="module")
def ingested(chroma_url: str, tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[tuple[Any, Any]]:
    """An advisor whose store is the Chroma server, and the report of its one ingest of the corpus."""
    from advisor.api import Advisor

    home = tmp_path_factory.mktemp("server-home")
    adv = Advisor(home=home, chroma_url=chroma_url)
    try:
        report = adv.ingest([corpus_dir])
        yield adv, report
    finally:
        _release(adv)


@pytest.fixture
def server_advisor(ingested: tuple[Any, Any]) -> Any:
    return ingested[0]


def test_ingest_goes_to_the_server_and_reingest_is_a_no_op(ingested: tuple[Any, Any], corpus_dir: Path) -> None:
    adv, first = ingested
    assert len(list(corpus_dir.glob("*.txt"))) == 5
    assert (first.added, first.updated, first.removed) == (5, 0, 0), first
    assert not first.warnings, first.warnings
    assert first.chunks_added == adv.store.count() > 0
    assert not (adv.settings.home / "chroma").exists(), "an embedded store was created beside the server"

    again = adv.ingest([corpus_dir])
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5), again
    assert again.chunks_added == again.chunks_removed == 0
    assert adv.store.count() == first.chunks_added


def test_english_question_finds_the_spanish_article(server_advisor: Any) -> None:
    passages = server_advisor.retrieve(QUESTION, k=5)
    assert "good-word-timing" in [p.source for p in passages], [(p.source, p.signals) for p in passages]
    for p in passages:
        assert read_source(p.path)[p.start : p.end] == p.text, (p.source, p.start, p.end)


def test_extractive_answer_cites_verbatim_passages(server_advisor: Any) -> None:
    answer = server_advisor.ask(QUESTION, llm=False)
    assert answer.mode == "extractive" and not answer.abstained, answer.notes
    assert answer.citations
    assert "good-word-timing" in [p.source for p in answer.citations]
    for p in answer.citations:
        source = read_source(p.path)
        assert source[p.start : p.end] == p.text, (p.source, p.start, p.end)
    quotes = re.findall(r"“(.+?)” \[(\d+)\]", answer.text)
    assert quotes, answer.text
    for quote, marker in quotes:
        cited = answer.citations[int(marker) - 1]
        assert quote in cited.text, (quote, marker)
        assert quote in read_source(cited.path)
