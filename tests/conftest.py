"""Shared fakes and fixtures for the advisor test suite.

* :class:`FakeEmbedder` -- a deterministic hashed bag-of-words embedder. Two
  texts are similar exactly when they share words, which is all a test of
  chunking, storage, ingest bookkeeping or citation checking needs.
* :class:`FakeGenerator` -- a scripted "language model" that records the
  messages it was given and, like a streaming model, stops (finish
  "abandoned") when its token sink returns False.
* ``registered_fakes``: both fakes registered by name (embedder and generator
  ``test-fake``) through advisor's registries, as a program would add its own,
  and unregistered after the test.
* A session-wide socket guard: any connection that is not loopback or a unix
  socket raises :class:`NetworkBlocked` and fails the test that made it.
* ``real_advisor``: ONE real advisor (USE embedder, Chroma, bundled corpus)
  built once per session and shared by the integration tests.
* Helpers every test module may import: ``advisor`` subprocesses (``clean_env``,
  ``cli_env``, ``hook_env`` with the ``test-fake`` embedder registered, ``run_cli``,
  ``assert_one_line_error``), ``free_port``, ``assert_markers_valid``, store checks
  (``stored``, ``assert_store_is_consistent``) and the two-topic documents with
  the ``answering`` script.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
CORPUS = REPO / "corpus"
INJECTION = TESTS / "data" / "injection"  # documents carrying instructions addressed to an AI
ADVISOR_BIN = Path(sys.executable).with_name("advisor")
PYTHON = sys.executable

SLOW = os.environ.get("ADVISOR_SLOW") == "1"
needs_slow = pytest.mark.skipif(not SLOW, reason="long variant: run with ADVISOR_SLOW=1")

# ----------------------------------------------------------------------------
# Fakes
# ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class FakeEmbedder:
    """Hashed bag of words: L2-normalised float32 counts of blake2b-hashed words.

    Implements :class:`advisor.embedders.Embedder`. Tokens are whitespace
    tokens. ``embedded`` counts the texts passed to ``embed_documents`` so a
    test can prove that nothing was re-embedded.
    """

    def __init__(self, name: str = "fake-bow", dim: int = 1024, max_tokens: int = 256) -> None:
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.embedded = 0
        self.query_calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            vec[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        self.query_calls += 1
        return self._vector(text)


Script = str | Callable[[Sequence[dict[str, str]]], str]


class FakeGenerator:
    """Implements :class:`advisor.generation.Generator` with a scripted answer.

    ``script`` is the answer text, or a function of the chat messages that
    returns it (so a test can cite sources by what the prompt numbered them).
    Every call's messages are kept in ``calls``.
    """

    def __init__(
        self,
        script: Script = "",
        n_ctx: int = 4096,
        name: str = "fake-llm",
        judge: Callable[[Sequence[dict[str, str]]], float] | None = None,
        coverage: float = 1.0,
        confidence: float = 0.9,
    ) -> None:
        self.script = script
        self.n_ctx = n_ctx
        self.name = name
        self.judge = judge  # the probability of "yes" to a check prompt; None: always yes
        self.coverage = coverage  # the probability of "COVERED: yes" to the answer prompt
        self.confidence = confidence  # the probability of each token of a translation, read back
        self.calls: list[list[dict[str, str]]] = []
        self.grammars: list[str | None] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        max_tokens: int,
        on_token: Callable[[str], bool | None] | None = None,
        timeout: float = 120.0,
        grammar: str | None = None,
    ) -> Any:
        from advisor.generation import Generation

        self.calls.append([dict(m) for m in messages])
        self.grammars.append(grammar)
        text = self.script(messages) if callable(self.script) else self.script
        finish = "stop"
        if on_token and text and on_token(text) is False:  # the sink asked to stop, as a streaming model would
            finish = "abandoned"
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        return Generation(text=text, prompt_tokens=prompt_tokens, finish=finish)

    def score(self, messages: Sequence[dict[str, str]], reply: str) -> list[float]:
        """Log-probabilities for the replies a yes/no check reads ("yes" with ``judge``'s probability),
        and for a translation read back (``confidence`` per token)."""
        import math

        if prompt_kind(messages) == "translate":  # a translation read back: every token equally sure
            return [math.log(self.confidence)] * max(1, len(reply.split()))
        p = 1.0 if self.judge is None else self.judge(messages)
        if prompt_kind(messages) == "answer":  # the coverage question: "COVERED: yes" or "COVERED: no"
            p = self.coverage
        said = reply.lower().split()[-1]
        share = p if said == "yes" else 1.0 - p
        return [math.log(max(share / 2, 1e-12))]


def prompt_kind(messages: Sequence[dict[str, str]]) -> str:
    """Which request of the advisor's ``messages`` are: "translate", "check", "answer" or "claim".

    A translation with the text before the quote shown is "translate" too (see :func:`in_context`).
    """
    from advisor.prompts import ANSWER_SYSTEM, CHECK_SYSTEM, CLAIM_SYSTEM, TRANSLATE_IN_CONTEXT_SYSTEM, TRANSLATE_SYSTEM

    system = messages[0]["content"]
    kinds = {
        TRANSLATE_SYSTEM: "translate",
        TRANSLATE_IN_CONTEXT_SYSTEM: "translate",
        CHECK_SYSTEM: "check",
        ANSWER_SYSTEM: "answer",
        CLAIM_SYSTEM: "claim",
    }
    return kinds[system]


def in_context(messages: Sequence[dict[str, str]]) -> bool:
    """Whether ``messages`` ask for a translation with the sentences before the quote shown."""
    from advisor.prompts import TRANSLATE_IN_CONTEXT_SYSTEM

    return messages[0]["content"] == TRANSLATE_IN_CONTEXT_SYSTEM


def evidence_lines(messages: Sequence[dict[str, str]]) -> list[str]:
    """The numbered evidence an answer prompt shows, in order (``[1]`` first)."""
    user = messages[-1]["content"]
    return re.findall(r"^\[\d+\] (.*)$", user, flags=re.MULTILINE)


_SOURCE_RE = re.compile(r'<source id="(\d+)"([^>]*)>\n(.*?)\n</source>', re.DOTALL)


def prompt_sources(messages: Sequence[dict[str, str]]) -> list[tuple[int, str, str]]:
    """``(number, attributes, text)`` of every ``<source>`` block in the user message."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    return [(int(n), attrs.strip(), body) for n, attrs, body in _SOURCE_RE.findall(user)]


def source_number(messages: Sequence[dict[str, str]], word: str) -> int:
    """The number the prompt gave to the (first) source whose text mentions ``word``."""
    for n, _attrs, body in prompt_sources(messages):
        if word.lower() in body.lower():
            return n
    raise AssertionError(f"no source in the prompt mentions {word!r}")


def read_source(path: str | os.PathLike[str]) -> str:
    """A document's text exactly as the advisor decodes it (bytes, UTF-8, no newline translation)."""
    return Path(path).read_bytes().decode("utf-8-sig")


# ----------------------------------------------------------------------------
# Offline guard
# ----------------------------------------------------------------------------


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network. (Not an OSError, so nothing swallows it.)"""


NETWORK_ATTEMPTS: list[str] = []


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS


def _guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        family = getattr(self, "family", None)
        if family == getattr(socket, "AF_UNIX", object()) or _is_loopback(address):
            return original(self, address, *args, **kwargs)
        NETWORK_ATTEMPTS.append(repr(address))
        raise NetworkBlocked(f"offline test suite: blocked a connection to {address!r}")

    return connect


@pytest.fixture(scope="session", autouse=True)
def _socket_guard() -> Iterator[None]:
    """For the whole session, any non-loopback connection raises NetworkBlocked."""
    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", _guarded(socket.socket.connect))
    mp.setattr(socket.socket, "connect_ex", _guarded(socket.socket.connect_ex))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _no_network_attempts() -> Iterator[None]:
    """Fail a test if it (or a background thread it started) tried to go online."""
    before = len(NETWORK_ATTEMPTS)
    yield
    attempts = NETWORK_ATTEMPTS[before:]
    del NETWORK_ATTEMPTS[before:]
    assert not attempts, f"network connections attempted during an offline test: {attempts}"


SITECUSTOMIZE = textwrap.dedent(
    """
    import ipaddress, socket, sys

    _orig = socket.socket.connect

    def _loop(address):
        host = address[0] if isinstance(address, tuple) else address
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def connect(self, address, *a, **k):
        if self.family == getattr(socket, "AF_UNIX", None) or _loop(address):
            return _orig(self, address, *a, **k)
        sys.stderr.write("NETWORK BLOCKED %r\\n" % (address,))
        raise OSError("network blocked by the test suite")

    socket.socket.connect = connect
    """
)


@pytest.fixture(scope="session")
def offline_sitecustomize(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``sitecustomize`` blocks non-loopback sockets in subprocesses."""
    folder = tmp_path_factory.mktemp("offline-site")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------


def _clear_advisor_env(mp: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ADVISOR_"):
            mp.delenv(key)


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No ADVISOR_* from the caller's shell, no real ~/.local/share, no hub downloads."""
    mp = pytest.MonkeyPatch()
    _clear_advisor_env(mp)
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    mp.setenv("ANONYMIZED_TELEMETRY", "False")
    mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per test too: whatever a previous test or the shell set, no ADVISOR_* leaks in."""
    _clear_advisor_env(monkeypatch)


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ADVISOR_HOME (and XDG data dir) for one test."""
    home = tmp_path / "home"
    home.mkdir()
    _clear_advisor_env(monkeypatch)
    monkeypatch.setenv("ADVISOR_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return home


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The repository's bundled corpus (read-only: copy it before changing it)."""
    assert (CORPUS / "corpus.toml").is_file(), f"bundled corpus missing at {CORPUS}"
    return CORPUS


@pytest.fixture
def corpus_copy(tmp_path: Path, corpus_dir: Path) -> Path:
    """A writable copy of the bundled corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(corpus_dir, target)
    return target


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


FAKE_NAME = "test-fake"  # the name the fakes are registered under (and the CLI tests' sitecustomize uses)


class RegisteredFakes:
    """What ``registered_fakes`` registered: every fake the registries made, and the script new generators get."""

    name = FAKE_NAME

    def __init__(self) -> None:
        self.embedders: list[FakeEmbedder] = []
        self.generators: list[FakeGenerator] = []
        self.script: Script = ""

    def make_embedder(self, threads: int | None = None) -> FakeEmbedder:
        self.embedders.append(FakeEmbedder())
        return self.embedders[-1]

    def make_generator(self, settings: Any = None, progress: Any = None) -> FakeGenerator:
        self.generators.append(FakeGenerator(self.script, n_ctx=settings.n_ctx if settings is not None else 4096))
        return self.generators[-1]


@pytest.fixture
def registered_fakes() -> Iterator[RegisteredFakes]:
    """FakeEmbedder and FakeGenerator registered as ``test-fake`` (embedder and generator) for one test."""
    from advisor.embedders import register_embedder, unregister_embedder
    from advisor.generation import register_generator, unregister_generator

    fakes = RegisteredFakes()
    register_embedder(FAKE_NAME, fakes.make_embedder)
    register_generator(FAKE_NAME, fakes.make_generator)
    try:
        yield fakes
    finally:
        unregister_embedder(FAKE_NAME)
        unregister_generator(FAKE_NAME)


@pytest.fixture
def fake_advisor(tmp_home: Path) -> Iterator[Any]:
    """An Advisor with the fake embedder and a real (embedded) Chroma store in ``tmp_home``."""
    from advisor.api import Advisor

    adv = Advisor(home=tmp_home, embedder=FakeEmbedder())
    yield adv
    adv.close()


def stored(adv: Any) -> list[Any]:
    """Every chunk an advisor's store holds."""
    return list(adv.store.all_chunks())


def assert_store_is_consistent(adv: Any) -> None:
    """The store holds unique ids, complete documents, and every chunk verbatim at its offsets."""
    chunks = stored(adv)
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)) == adv.store.count()
    per_doc = Counter(str(c.meta["doc_id"]) for c in chunks)
    for c in chunks:
        assert per_doc[str(c.meta["doc_id"])] == c.meta["n_chunks"], c.meta["doc_id"]
        source = read_source(c.meta["path"])
        assert source[c.meta["start"] : c.meta["end"]] == c.text, (c.meta["path"], c.meta["start"])


def write_docs(folder: Path, files: dict[str, str | bytes]) -> Path:
    """A new folder holding ``files`` (name -> UTF-8 text or bytes)."""
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    return folder


def corpus_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.txt"))


# ----------------------------------------------------------------------------
# The real advisor (integration)
# ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_advisor(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Any]:
    """ONE real advisor for the session: USE embedder, embedded Chroma, bundled corpus."""
    from advisor.api import Advisor

    home = tmp_path_factory.mktemp("real-home")
    # llama.cpp's default threads: the default model (1.5B) needs both cores; CI runs alone.
    adv = Advisor(home=home)
    report = adv.ingest([corpus_dir])
    assert report.added == len(list(corpus_dir.glob("*.txt"))), report
    assert not report.warnings, report.warnings
    yield adv
    adv.close()


# ----------------------------------------------------------------------------
# The advisor command, as a user runs it
# ----------------------------------------------------------------------------


def run_advisor(
    args: Sequence[str], home: Path, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``advisor`` script; it must never print a traceback or reach the network."""
    assert ADVISOR_BIN.is_file(), f"the advisor script is missing next to the interpreter: {ADVISOR_BIN}"
    proc = subprocess.run(
        [str(ADVISOR_BIN), *args],
        capture_output=True,
        text=True,
        env={**env, "ADVISOR_HOME": str(home)},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, stream
        assert "NETWORK BLOCKED" not in stream, stream
    return proc


# ----------------------------------------------------------------------------
# advisor subprocesses: the environment, the test-only embedder, what they print
# ----------------------------------------------------------------------------


def tag(i: int) -> str:
    """A letters-only word unique to ``i`` (FakeEmbedder ignores digits)."""
    out = ""
    while True:
        out = chr(ord("a") + i % 26) + out
        i //= 26
        if i == 0:
            return "zq" + out


def replicate_corpus(folder: Path, copies: int) -> Path:
    """The bundled articles ``copies`` times under distinct names, every line tagged per copy.

    The tag makes every chunk's text (and so its embedding) unique across copies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(CORPUS.glob("*.txt")):
        text = read_source(source)
        for i in range(copies):
            lines = [f"{line} {tag(i)}" if line.strip() else line for line in text.split("\n")]
            (folder / f"{source.stem}-{i:03d}.txt").write_text("\n".join(lines), encoding="utf-8")
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ADVISOR_*, offline, 120 columns wide, with ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", COLUMNS="120")
    env.update(extra)
    return env


HOOK = SITECUSTOMIZE + textwrap.dedent(
    """
    import os as _os
    import time as _time

    sys.path.insert(0, {tests!r})


    def _install_test_embedder():
        from advisor.embedders import register_embedder

        def fake(threads=None):
            from conftest import FakeEmbedder

            embedder = FakeEmbedder()
            delay = float(_os.environ.get("HARDENING_EMBED_DELAY") or 0)
            if delay:
                plain = embedder.embed_documents

                def slowly(texts):
                    _time.sleep(delay)
                    return plain(texts)

                embedder.embed_documents = slowly
            return embedder

        register_embedder("test-fake", fake)  # as a program embedding advisor adds its own embedder


    _install_test_embedder()
    """
)


@pytest.fixture(scope="session")
def hook_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ``advisor`` subprocesses: offline guard + the ``test-fake`` embedder.

    This checkout's advisor comes first on the path (as an editable install has it), so the
    hook registers into the package under test.
    """
    folder = tmp_path_factory.mktemp("hardening-site")
    (folder / "sitecustomize.py").write_text(HOOK.format(tests=str(TESTS)), encoding="utf-8")
    return clean_env(PYTHONPATH=os.pathsep.join([str(folder), str(TESTS.parent)]))


def run_cli(
    args: Sequence[str], home: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return run_advisor(args, home, env, timeout)


def assert_no_traceback(*streams: str) -> None:
    for stream in streams:
        assert "Traceback" not in stream, stream
        assert "NETWORK BLOCKED" not in stream, stream


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The command failed with exit ``code`` and one line on stderr, ``error: ...``; returns that line."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def cli_env(offline_sitecustomize: Path) -> dict[str, str]:
    """Environment for ``advisor`` subprocesses: :func:`clean_env` plus the offline guard."""
    return clean_env(PYTHONPATH=str(offline_sitecustomize))  # blocks non-loopback sockets in the child


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_markers_valid(text: str, n_citations: int) -> None:
    """Every citation marker in ``text`` names one of the ``n_citations`` citations."""
    from advisor.citations import MARKER_RE

    for group in MARKER_RE.findall(text):
        for n in re.findall(r"\d+", group):
            assert 1 <= int(n) <= n_citations, (n, n_citations, text)


# ----------------------------------------------------------------------------
# Two topics, and a scripted model answering about one
# ----------------------------------------------------------------------------

SALARY = (
    "Salary negotiation\n"
    "When the recruiter makes an offer, counter politely with a researched salary range. "
    "Mention market data from comparable roles in your city.\n"
)
GARDEN = "Tomato gardening\nWater tomato plants deeply twice weekly during hot summer months. Mulch keeps soil moist.\n"


@pytest.fixture
def two_topic_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "two-topics"
    docs.mkdir()
    (docs / "salary.txt").write_text(SALARY, encoding="utf-8")
    (docs / "garden.txt").write_text(GARDEN, encoding="utf-8")
    return docs


ANSWER = "Counter the recruiter's offer politely with a researched salary range"


def answering(sentence: str = ANSWER, word: str = "salary range", covered: str = "yes") -> Any:
    """A script: translations echo their quote; the answer is ``sentence`` citing the evidence with ``word``."""

    def script(messages: Any) -> str:
        if prompt_kind(messages) == "translate":
            return messages[-1]["content"].split("\n")[2]
        if covered != "yes":
            return f"COVERED: {covered}"
        n = next(i for i, line in enumerate(evidence_lines(messages), start=1) if word in line)
        return f"COVERED: yes\nANSWER: {sentence} [{n}]"

    return script


SALARY_QUESTION = "How should I counter a salary offer from the recruiter?"


@pytest.fixture(scope="module")
def use() -> Any:
    """The real multilingual USE embedder, once per module."""
    from advisor.embedders import UseEmbedder

    return UseEmbedder()


# ----------------------------------------------------------------------------
# advisor serve: one real advisor behind one server, shared by the web tests
# ----------------------------------------------------------------------------

WEB_MAX_UPLOAD = 256 * 1024  # small, so the size limit is cheap to test


@pytest.fixture(scope="session")
def web_advisor(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Any]:
    """A real advisor (USE, Chroma, bundled corpus) of its own: the web tests add and remove documents."""
    from advisor.api import Advisor

    adv = Advisor(home=tmp_path_factory.mktemp("web-home"), n_threads=1)
    adv.ingest([corpus_dir])
    yield adv
    adv.close()


@pytest.fixture(scope="session")
def web_server(web_advisor: Any) -> Iterator[Any]:
    """``advisor serve`` on a thread, on a free loopback port (``.url``); model-written answers allowed."""
    from advisor.server import start_in_thread

    srv = start_in_thread(web_advisor, max_upload=WEB_MAX_UPLOAD)
    yield srv
    srv.stop()
