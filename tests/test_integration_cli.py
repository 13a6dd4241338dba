"""The ``advisor`` command, run as a user runs it: a subprocess with its own ADVISOR_HOME."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ADVISOR_BIN, assert_one_line_error, free_port, read_source, run_advisor, write_docs

pytestmark = pytest.mark.integration

QUESTION = "My contact knows the hiring manager, when should I ask?"


def run(args: list[str], home: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_advisor(args, home, env, timeout)


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]
) -> tuple[Path, list[subprocess.CompletedProcess[str]]]:
    """A home filled by ``advisor ingest``, run twice."""
    home = tmp_path_factory.mktemp("cli-home")
    runs = [run(["ingest"], home, cli_env), run(["ingest"], home, cli_env)]
    return home, runs


@pytest.fixture
def home_copy(ingested: tuple[Path, list[subprocess.CompletedProcess[str]]], tmp_path: Path) -> Path:
    """A private, already-ingested ADVISOR_HOME for one test."""
    target = tmp_path / "home"
    shutil.copytree(ingested[0], target)
    return target


def test_ingest_twice_adds_nothing_the_second_time(
    ingested: tuple[Path, list[subprocess.CompletedProcess[str]]], corpus_dir: Path
) -> None:
    _, (first, second) = ingested
    n_docs = len(list(corpus_dir.glob("*.txt")))
    assert first.returncode == 0, first.stderr
    assert re.match(rf"{n_docs} added, 0 updated, 0 unchanged, 0 removed \((\d+) chunks embedded", first.stdout)
    assert second.returncode == 0, second.stderr
    assert "0 added, 0 updated" in second.stdout
    assert f"{n_docs} unchanged" in second.stdout
    assert "0 chunks embedded" in second.stdout


def test_ask_json_without_the_model(tmp_path: Path, cli_env: dict[str, str]) -> None:
    home = tmp_path / "fresh"  # empty: the bundled corpus is ingested on first use
    proc = run(["ask", "--json", "--no-llm", QUESTION], home, cli_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"answer", "mode", "abstained", "citations"} <= set(data)
    assert data["mode"] == "extractive" and data["abstained"] is False
    assert isinstance(data["answer"], str) and data["answer"]
    assert data["citations"]
    for c in data["citations"]:
        assert {"source", "title", "lang", "start", "end", "text", "score"} <= set(c)
        assert isinstance(c["start"], int) and isinstance(c["end"], int) and isinstance(c["score"], float)
        assert c["lang"] in ("en", "es", "de")
        assert read_source(c["path"])[c["start"] : c["end"]] == c["text"]
        # the sentence the answer quotes: verbatim in the file, inside the cited passage, and in the answer
        quote = c["supporting_sentence"]
        assert read_source(c["path"])[quote["start"] : quote["end"]] == quote["text"]
        assert c["start"] <= quote["start"] < quote["end"] <= c["end"]
        assert quote["text"] in data["answer"]
    for n in re.findall(r"\[(\d+)\]", data["answer"]):
        assert 1 <= int(n) <= len(data["citations"])


def test_ask_text_output_lists_sources(home_copy: Path, cli_env: dict[str, str]) -> None:
    proc = run(["ask", "--no-llm", "--explain", "-k", "3", QUESTION], home_copy, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "Sources:" in proc.stdout and "[1]" in proc.stdout
    assert "extractive" in proc.stdout
    assert "Retrieved" in proc.stdout  # --explain
    retrieved = [ln for ln in proc.stdout.splitlines() if re.match(r"\s+\d\.\d{3}\s", ln)]
    assert len(retrieved) == 3  # -k 3


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_exits_2(tmp_path: Path, cli_env: dict[str, str], question: str) -> None:
    line = assert_one_line_error(run(["ask", question], tmp_path / "h", cli_env), 2)
    assert "empty" in line


@pytest.mark.parametrize("k", ["0", "-2", "51"])
def test_k_out_of_range_exits_2(tmp_path: Path, cli_env: dict[str, str], k: str) -> None:
    assert_one_line_error(run(["ask", "-k", k, QUESTION], tmp_path / "h", cli_env), 2)


def test_nonexistent_ingest_path_exits_3(tmp_path: Path, cli_env: dict[str, str]) -> None:
    missing = tmp_path / "does-not-exist"
    line = assert_one_line_error(run(["ingest", str(missing)], tmp_path / "h", cli_env), 3)
    assert str(missing) in line


def test_missing_model_exits_4(home_copy: Path, cli_env: dict[str, str]) -> None:
    line = assert_one_line_error(run(["ask", "--model", "/nonexistent.gguf", QUESTION], home_copy, cli_env), 4)
    assert "/nonexistent.gguf" in line and "--model" in line


@pytest.mark.parametrize(
    ("name", "content"), [("empty.gguf", b""), ("notes.gguf", b"These are my interview notes, not a model.\n")]
)
def test_bad_model_file_exits_4(
    home_copy: Path, tmp_path: Path, cli_env: dict[str, str], name: str, content: bytes
) -> None:
    model = tmp_path / name
    model.write_bytes(content)
    line = assert_one_line_error(run(["ask", "--model", str(model), QUESTION], home_copy, cli_env), 4)
    assert str(model) in line and "ADVISOR_MODEL" in line


def test_bad_model_from_the_environment_exits_4(home_copy: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    model = tmp_path / "dir.gguf"
    model.mkdir()
    env = {**cli_env, "ADVISOR_MODEL": str(model)}
    assert_one_line_error(run(["ask", QUESTION], home_copy, env), 4)


def test_bad_setting_in_the_environment_exits_6(tmp_path: Path, cli_env: dict[str, str]) -> None:
    line = assert_one_line_error(run(["ask", QUESTION], tmp_path / "h", {**cli_env, "ADVISOR_K": "many"}), 6)
    assert "k" in line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADVISOR_WORD_WEIGHT", "-1"),
        ("ADVISOR_WORD_THRESHOLD", "2"),
        ("ADVISOR_RERANK_CANDIDATES", "0"),
        ("ADVISOR_GLOSS", "maybe"),
        ("ADVISOR_ENGLISH_FALLBACK", "perhaps"),
        ("ADVISOR_TRANSLATION_ROUND_TRIP", "maybe"),
        ("ADVISOR_TRANSLATION_CONTEXT", "sometimes"),
        ("ADVISOR_CORPUS", '["unclosed'),
        ("ADVISOR_CORPUS", '["~/notes", 3]'),
    ],
)
def test_bad_new_settings_exit_6_naming_the_variable(
    tmp_path: Path, cli_env: dict[str, str], name: str, value: str
) -> None:
    line = assert_one_line_error(run(["ask", QUESTION, "--no-llm"], tmp_path / "h", {**cli_env, name: value}), 6)
    assert name in line, line


def test_help_exits_0(tmp_path: Path, cli_env: dict[str, str]) -> None:
    top = run(["--help"], tmp_path / "h", cli_env)
    assert top.returncode == 0, top.stderr
    for command in ("ingest", "ask", "eval"):
        assert command in top.stdout
    ask = run(["ask", "--help"], tmp_path / "h", cli_env)
    assert ask.returncode == 0, ask.stderr
    for option in ("--no-llm", "--model", "--json", "--home"):
        assert option in ask.stdout


def test_the_child_process_network_guard_is_active(cli_env: dict[str, str]) -> None:
    """What the CLI runs under really blocks the network (so 'no NETWORK BLOCKED' above means something)."""
    import sys

    code = "import socket; socket.create_connection(('192.0.2.1', 9), timeout=2)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert "NETWORK BLOCKED" in proc.stderr


SCENARIOS = Path(__file__).parent / "scenarios" / "smoke.jsonl"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["ask", QUESTION, "--timeout", "0"], 2, "the timeout must be a positive number of seconds"),
        (["chat", "-k", "0"], 2, "k must be between 1 and 50"),
        (["eval", str(SCENARIOS), "--min", "source_hit@5"], 2, "--min takes METRIC=VALUE"),
        (["eval", str(SCENARIOS), "--filter", "no-such-tag"], 2, "no scenarios to run"),
        (["eval", str(SCENARIOS), "--concurrency", "2"], 2, "needs a model server (--llm-url)"),
        (["eval", str(SCENARIOS), "--concurrency", "0"], 2, "--concurrency must be at least 1"),
        (["eval", "missing.yaml"], 7, "scenario file not found"),
        (["models", "pull", "no-such-model"], 4, "no-such-model"),
        (["remove", " "], 2, "an empty name was given to remove; name a source id or path"),
    ],
)
def test_more_user_errors_are_one_line_with_their_exit_code(
    tmp_path: Path, cli_env: dict[str, str], args: list[str], code: int, says: str
) -> None:
    line = assert_one_line_error(run([*args], tmp_path, cli_env), code)
    assert says in line, line


def test_sources_lists_and_remove_forgets_documents(home_copy: Path, corpus_dir: Path, cli_env: dict[str, str]) -> None:
    listed = run(["sources", "--json"], home_copy, cli_env)
    assert listed.returncode == 0, listed.stderr
    docs = json.loads(listed.stdout)
    assert sorted(d["source"] for d in docs) == sorted(
        re.findall(r'^id = "([^"]+)"', (corpus_dir / "corpus.toml").read_text(), re.M)
    )
    text = run(["sources"], home_copy, cli_env)
    assert text.returncode == 0 and "good-word-timing" in text.stdout
    assert f"{len(docs)} documents, {sum(d['chunks'] for d in docs)} chunks" in text.stderr

    gone = run(["remove", "good-word-timing", "--json"], home_copy, cli_env)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["removed"] == 1
    after = json.loads(run(["sources", "--json"], home_copy, cli_env).stdout)
    assert [d["source"] for d in after] == [d["source"] for d in docs if d["source"] != "good-word-timing"]
    answer = json.loads(run(["ask", QUESTION, "--no-llm", "--json", "-k", "10"], home_copy, cli_env).stdout)
    assert all(r["source"] != "good-word-timing" for r in answer["retrieved"])

    # a typo removes nothing, in one line with exit 3
    line = assert_one_line_error(run(["remove", "second-interview", "no-such-doc"], home_copy, cli_env), 3)
    assert "'no-such-doc'" in line and "advisor sources" in line
    assert len(json.loads(run(["sources", "--json"], home_copy, cli_env).stdout)) == len(docs) - 1


def test_sources_on_an_empty_home_says_how_to_fill_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run(["sources"], tmp_path, cli_env)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "advisor ingest" in proc.stderr
    assert json.loads(run(["sources", "--json"], tmp_path, cli_env).stdout) == []


def test_settings_shows_each_value_and_its_source(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "advisor.toml").write_text("mmr_lambda = 0.8\n")
    proc = run(["settings", "--json"], tmp_path, {**cli_env, "ADVISOR_K": "7"})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert (rows["k"]["value"], rows["k"]["source"]) == (7, "env")
    assert (rows["mmr_lambda"]["value"], rows["mmr_lambda"]["source"]) == (0.8, f"file {tmp_path / 'advisor.toml'}")
    assert rows["embedder"]["source"] == "default"
    text = run(["settings"], tmp_path, {**cli_env, "ADVISOR_K": "7"})
    assert re.search(r"^k +7 +env$", text.stdout, re.M), text.stdout
    line = assert_one_line_error(run(["settings"], tmp_path, {**cli_env, "ADVISOR_K": "many"}), 6)
    assert "ADVISOR_K" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ask"], "missing argument 'question'; see advisor ask --help"),
        (["ask", QUESTION, "--bogus"], "no such option: --bogus; see advisor ask --help"),
        (["ask", QUESTION, "-k", "abc"], "'-k' / '--k'"),
        (["frobnicate"], "no such command 'frobnicate'; see advisor --help"),
        (["models", "pull"], "missing argument 'name'; see advisor models pull --help"),
    ],
)
def test_usage_errors_are_one_line_too(tmp_path: Path, cli_env: dict[str, str], args: list[str], says: str) -> None:
    # Regression: Click printed four lines (usage, hint, blank, "Error: ...").
    line = assert_one_line_error(run(args, tmp_path, cli_env), 2)
    assert says in line, line


def test_advisor_alone_prints_the_help(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run([], tmp_path, cli_env)
    assert proc.returncode == 2 and "Usage: advisor" in proc.stderr and "ingest" in proc.stderr


def test_documents_and_file_names_cannot_control_the_terminal(
    home_copy: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    escape = (
        "# Referral timing\n\nAsk your contact for a referral after the first interview"
        "\x1b]0;PWNED\x07 and thank them\x1b]52;c;ZWNobyBwd25lZA==\x07 afterwards.\n"
    )
    forged = "a\nerror: disk full, all documents deleted.md"  # a file name forging an error line
    docs = write_docs(tmp_path / "docs", {"escape.md": escape, forged: b"\x00\x01binary"})
    ingest = run(["ingest", str(docs)], home_copy, cli_env)
    assert ingest.returncode == 0, ingest.stderr
    assert not any(line.startswith("error:") for line in ingest.stderr.splitlines()), ingest.stderr
    assert "\x1b" not in ingest.stderr
    answer = run(["ask", "When should I ask my contact for a referral?", "--no-llm", "-k", "8"], home_copy, cli_env)
    assert answer.returncode == 0, answer.stderr
    assert "escape.md" in answer.stdout  # the document was cited, so its text was printed
    assert "\x1b" not in answer.stdout and "\x07" not in answer.stdout
    assert "\ufffd]0;PWNED\ufffd" in answer.stdout
    # --json keeps the text exact (JSON escapes control characters)
    asked = run(
        ["ask", "When should I ask my contact for a referral?", "--no-llm", "--json", "-k", "8"], home_copy, cli_env
    )
    data = json.loads(asked.stdout)
    assert any("\x1b]0;PWNED\x07" in c["text"] for c in data["citations"])


def test_a_question_that_is_not_utf8_is_read_as_latin1(home_copy: Path, cli_env: dict[str, str]) -> None:
    # Regression: exit 70 (UnicodeEncodeError inside the embedder) for a Latin-1 terminal's question.
    proc = subprocess.run(
        [str(ADVISOR_BIN), "ask", b"\xbfCu\xe1ndo debo pedir una referencia?", "--no-llm", "--json"],
        capture_output=True,
        env={**cli_env, "ADVISOR_HOME": str(home_copy)},
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["question"] == "¿Cuándo debo pedir una referencia?"


def test_infinite_or_nan_settings_are_refused(tmp_path: Path, cli_env: dict[str, str]) -> None:
    for var in ("ADVISOR_TIMEOUT=inf", "ADVISOR_ABSTAIN_THRESHOLD=nan"):
        name, value = var.split("=")
        line = assert_one_line_error(run(["settings", "--json"], tmp_path, {**cli_env, name: value}), 6)
        assert "finite" in line and name in line


@pytest.mark.parametrize("model", ["/nonexistent", "bad..name"])
def test_a_sentence_transformers_model_that_cannot_load_is_one_error_line(
    model: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # sentence-transformers logs a warning of its own before such a load fails: it must not reach stderr
    if Path(model).exists():
        pytest.skip(f"{model} exists on this machine")
    proc = run(["ask", QUESTION, "--no-llm", "--embedder", f"st:{model}"], tmp_path, cli_env)
    line = assert_one_line_error(proc, 4)
    assert model in line


def test_chat_answers_follow_ups_survives_a_bad_question_and_keeps_stdout_for_answers(
    home_copy: Path, cli_env: dict[str, str]
) -> None:
    session = "\n".join(["When should I ask my contact for a good word?", "x" * 2500, "And how should I ask?", "", ""])
    proc = subprocess.run(
        [str(ADVISOR_BIN), "chat", "--no-llm"],
        input=session,
        capture_output=True,
        text=True,
        env={**cli_env, "ADVISOR_HOME": str(home_copy)},
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("Sources:") == 2  # two answers; the over-long question did not end the session
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "2500 characters" in errors[0]
    assert "you>" not in proc.stdout and "you>" in proc.stderr  # the prompt never mixes into the answers


def test_a_streamed_draft_is_labelled_and_then_kept_or_discarded(home_copy: Path, cli_env: dict[str, str]) -> None:
    """On a terminal the model's output streams to stderr, said to be unchecked, then that it was checked."""
    import threading

    from advisor.cli import DRAFT_DONE, DRAFT_HEADER

    master, slave = os.openpty()  # stderr is a terminal, stdout a pipe (as in `advisor ask … | less`)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [str(ADVISOR_BIN), "ask", "-k", "2", QUESTION],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env={**cli_env, "ADVISOR_HOME": str(home_copy)},
            timeout=240,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and DRAFT_HEADER not in out
    assert err.index(DRAFT_HEADER) < err.index("-" * 40)
    draft = err.split(DRAFT_HEADER, 1)[1].split("-" * 40, 1)[0].strip()
    assert draft  # the model's own words, streamed
    assert DRAFT_DONE in err.split("-" * 40, 1)[1], err
    assert "mode: " in out and "Sources:" in out


def test_ctrl_c_at_the_chat_prompt_is_one_error_line_of_its_own(home_copy: Path, cli_env: dict[str, str]) -> None:
    import signal
    import threading
    import time

    # A shell without job control (CI) starts background jobs with SIGINT ignored, and a child
    # inherits an ignored signal: while it starts, this process handles SIGINT, so the child
    # gets the default that a terminal's Ctrl-C meets.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [str(ADVISOR_BIN), "chat", "--no-llm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**cli_env, "ADVISOR_HOME": str(home_copy)},
        )
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    err: list[bytes] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read1(1024), b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    while b"you> " not in b"".join(err) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    reader.join(timeout=10)
    text = b"".join(err).decode()
    assert "Traceback" not in text
    assert text.endswith("you> \nerror: interrupted\n"), text


def test_ctrl_c_while_the_command_line_loads_is_one_line_too(cli_env: dict[str, str]) -> None:
    from importlib.metadata import entry_points

    # the installed `advisor` command starts at the entry point that guards the import
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "advisor"]
    assert script.value == "advisor.__main__:main"
    # a Ctrl-C that lands while typer is being imported (the first ~0.3 s of every command)
    child = (
        "import builtins, os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "real = builtins.__import__\n"
        "def interrupting(name, *args, **kwargs):\n"
        "    if name == 'typer':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupting\n"
        "sys.argv = ['advisor', 'settings']\n"
        "from advisor.__main__ import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child], check=False, capture_output=True, text=True, env=cli_env, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "error: interrupted\n"
    assert proc.stdout == ""


def test_an_unreachable_chroma_server_says_to_start_it_not_to_move_a_directory(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    port = free_port()  # a loopback port nothing listens on
    proc = run(["ask", "--no-llm", "--chroma-url", f"http://127.0.0.1:{port}", QUESTION], tmp_path, cli_env)
    line = assert_one_line_error(proc, 5)
    assert f"http://127.0.0.1:{port}" in line
    assert "start the Chroma server" in line and "--chroma-url" in line
    assert "move the directory away" not in line


def test_a_sentence_transformers_embedder_loads_without_progress_bars(tmp_path: Path, cli_env: dict[str, str]) -> None:
    args = ["ask", "--no-llm", "--embedder", "minilm", "--json", "Should I connect on LinkedIn?"]
    proc = run(args, tmp_path, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""  # no "Loading weights" bar while the model loads
    assert json.loads(proc.stdout)["citations"]


def test_version_prints_the_installed_version(tmp_path: Path, cli_env: dict[str, str]) -> None:
    from importlib.metadata import version

    import advisor

    proc = run(["--version"], tmp_path, cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"advisor {version('advisor')}\n"
    assert advisor.__version__ == version("advisor")  # the package and its metadata agree
