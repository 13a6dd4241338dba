"""Evaluated prompt starts saved on disk: a new process loads them and answers exactly as if it had evaluated them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advisor.faithfulness import yes_probability
from advisor.promptcache import PromptStates
from advisor.prompts import check_messages, translate_messages

QUOTE = "Primero, le preguntaría a su conexión de LinkedIn qué tan bien se conoce al gerente de contratación."


class _Untouchable:
    """A model context that fails the test if anything reads or writes it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the context was used ({name}) although nothing was saved")


def test_nothing_saved_leaves_the_context_alone(tmp_path: Path) -> None:
    states = PromptStates(tmp_path / "prompt-states", "model-a")
    assert not states.restore(_Untouchable(), [1, 2, 3])
    assert not states.restore(_Untouchable(), [])


def test_another_model_or_build_never_sees_a_saved_start(tmp_path: Path) -> None:
    a = PromptStates(tmp_path, "model-a|n_ctx=2048")
    b = PromptStates(tmp_path, "model-b|n_ctx=2048")
    assert a._paths([1, 2, 3]) != b._paths([1, 2, 3])
    assert a._paths([1, 2, 3]) != a._paths([1, 2, 4])


def test_only_the_most_recently_used_starts_are_kept(tmp_path: Path) -> None:
    import os

    from advisor.promptcache import KEEP

    states = PromptStates(tmp_path, "model-a")
    for n in range(KEEP + 5):  # older prompts' starts (an upgrade changed the worked examples)
        data, record = states._paths([n])
        data.write_bytes(b"x")
        record.write_text("{}", encoding="utf-8")
        os.utime(record, ns=(n * 10**9, n * 10**9))
    left = tmp_path / "left-by-a-crash.tmp"
    left.write_bytes(b"x")
    os.utime(left, ns=(0, 0))
    writing = tmp_path / "being-written.tmp"
    writing.write_bytes(b"x")
    states._prune()
    assert not left.exists() and writing.exists()
    kept = {p.stem for p in tmp_path.glob("*.json")}
    assert kept == {states._paths([n])[1].stem for n in range(5, KEEP + 5)}
    assert {p.stem for p in tmp_path.glob("*.state")} == kept


def _answers(gen: Any) -> tuple[str, float]:
    """A translation and a check probability: the replies of two kinds of request, each with its fixed start."""
    text = gen.chat(translate_messages(QUOTE, "en"), 60).text
    return text, yes_probability(gen, check_messages(QUOTE, "es", text, "en"))


@pytest.mark.integration
def test_a_new_process_loads_the_saved_starts_and_answers_the_same(tmp_path: Path) -> None:
    from advisor.generation import LlamaCppGenerator, default_model_path

    states = tmp_path / "prompt-states"
    path = default_model_path()
    evaluated = _answers(LlamaCppGenerator(path, n_ctx=2048, state_dir=states))
    saved = sorted(p.suffix for p in states.iterdir())
    assert saved == [".json", ".json", ".state", ".state"]  # one start per kind of request

    loaded_gen = LlamaCppGenerator(path, n_ctx=2048, state_dir=states)
    assert loaded_gen._states is not None
    restored: list[bool] = []
    restore = loaded_gen._states.restore

    def spy(llm: Any, tokens: Any) -> bool:
        restored.append(restore(llm, tokens))
        return restored[-1]

    loaded_gen._states.restore = spy  # type: ignore[method-assign]
    assert _answers(loaded_gen) == evaluated
    assert restored == [True, True]

    # the same replies as a model that keeps nothing on disk
    assert _answers(LlamaCppGenerator(path, n_ctx=2048)) == evaluated


@pytest.mark.integration
def test_a_damaged_saved_start_is_dropped_and_evaluated_again(tmp_path: Path) -> None:
    from advisor.generation import LlamaCppGenerator, default_model_path

    states = tmp_path / "prompt-states"
    path = default_model_path()
    evaluated = _answers(LlamaCppGenerator(path, n_ctx=2048, state_dir=states))
    damaged = sorted(states.glob("*.state"))
    for file in damaged:  # a crash half-way through writing, or a disk error
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    before = {p: p.read_bytes() for p in damaged}

    gen = LlamaCppGenerator(path, n_ctx=2048, state_dir=states)
    assert _answers(gen) == evaluated
    # the damaged files were not loaded: they were deleted and saved again from a new evaluation
    assert all(p.exists() and p.read_bytes() != before[p] for p in damaged)


@pytest.mark.integration
def test_the_prompt_cache_setting_turns_it_off(tmp_path: Path) -> None:
    from advisor.generation import make_generator
    from advisor.settings import load_settings

    on = make_generator(load_settings(home=tmp_path))
    off = make_generator(load_settings(home=tmp_path, prompt_cache=False))
    assert getattr(on, "_states", None) is not None and on._states.directory == tmp_path / "prompt-states"  # type: ignore[attr-defined]
    assert getattr(off, "_states", "missing") is None
