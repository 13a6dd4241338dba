"""The Advisor API with the fake embedder and a real embedded Chroma store."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import FakeEmbedder, FakeGenerator, assert_store_is_consistent, corpus_files, read_source

from advisor.api import MAX_QUESTION_CHARS, Advisor
from advisor.errors import InputError
from advisor.types import Answer


# ---------------------------------------------------------------- questions
@pytest.mark.parametrize("question", ["", "   \n\t ", "x" * 5000, " ".join(["word"] * 1200)])
def test_bad_questions_are_input_errors(fake_advisor: Advisor, question: str) -> None:
    with pytest.raises(InputError) as info:
        fake_advisor.ask(question, llm=False)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2
    assert fake_advisor._store is None  # rejected before touching the store


def test_a_question_at_the_limit_is_accepted(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    question = ("interview " * MAX_QUESTION_CHARS)[: MAX_QUESTION_CHARS - 1] + "?"
    answer = fake_advisor.ask(question, llm=False)
    assert isinstance(answer, Answer)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_an_input_error(fake_advisor: Advisor, k: int) -> None:
    with pytest.raises(InputError):
        fake_advisor.retrieve("when should I ask?", k=k)


def test_a_citation_whose_file_changed_or_went_away_says_so(fake_advisor: Advisor, corpus_copy: Path) -> None:
    question = "Sollten Sie sich auf LinkedIn mit dem Interviewer verbinden?"
    fake_advisor.ingest([corpus_copy])
    answer = fake_advisor.ask(question, llm=False)
    assert answer.citations and not [n for n in answer.notes if "since it was ingested" in n]
    cited = Path(answer.citations[0].path)
    original = cited.read_bytes()

    cited.write_bytes(b"A new first line.\n" + original)  # every offset after it moves
    for _ in range(2):  # fresh, then served from the answer cache: both are checked
        notes = [n for n in fake_advisor.ask(question, llm=False).notes if "since it was ingested" in n]
        assert notes == [
            f"{cited} has changed since it was ingested; the quote is the stored copy; "
            f"advisor ingest {cited} to update it"
        ]

    cited.unlink()
    notes = [n for n in fake_advisor.ask(question, llm=False).notes if "since it was ingested" in n]
    assert len(notes) == 1 and notes[0].startswith(f"{cited} is gone")
    assert f"advisor remove {answer.citations[0].source}" in notes[0]

    cited.write_bytes(original)  # back as it was: nothing to say
    assert not [n for n in fake_advisor.ask(question, llm=False).notes if "since it was ingested" in n]


def test_documents_say_whether_each_file_still_holds_what_was_stored(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    assert {d.file for d in fake_advisor.documents()} == {"same"}
    edited, deleted = corpus_files(corpus_copy)[:2]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    deleted.unlink()
    states = {Path(d.path).name: d.file for d in fake_advisor.documents()}
    assert states.pop(edited.name) == "changed" and states.pop(deleted.name) == "missing"
    assert set(states.values()) == {"same"}
    fake_advisor.ingest([corpus_copy])
    assert {d.file for d in fake_advisor.documents()} == {"same"}


def test_a_moved_folder_is_cited_at_its_new_place_without_embedding_again(
    fake_advisor: Advisor, corpus_copy: Path, tmp_path: Path
) -> None:
    fake_advisor.ingest([corpus_copy])
    moved = corpus_copy.rename(tmp_path / "moved")  # ids come from its corpus.toml, so they stay
    embedder = fake_advisor.embedder
    assert isinstance(embedder, FakeEmbedder)
    before = embedder.embedded
    report = fake_advisor.ingest([moved])
    n = len(corpus_files(moved))
    assert (report.added, report.updated, report.unchanged, report.chunks_added) == (0, n, 0, 0)
    assert embedder.embedded == before
    assert {Path(d.path).parent for d in fake_advisor.documents()} == {moved.resolve()}
    assert_store_is_consistent(fake_advisor)
    answer = fake_advisor.ask("Sollten Sie sich auf LinkedIn mit dem Interviewer verbinden?", llm=False)
    assert answer.citations and not [n for n in answer.notes if "since it was ingested" in n]


def test_the_bundled_articles_follow_a_new_install(
    tmp_home: Path, tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed again (a new virtualenv), the store cites the new install's copies, once each."""
    import advisor.api
    import advisor.ingest

    installs = []
    for venv in ("old-venv", "new-venv"):
        bundle = tmp_path / venv / "advisor" / "_corpus"
        shutil.copytree(corpus_dir, bundle)
        installs.append(bundle.resolve())
    old, new = installs

    def use(bundle: Path) -> None:
        monkeypatch.setattr(advisor.ingest, "bundled_corpus", lambda: bundle)
        monkeypatch.setattr(advisor.api, "bundled_corpus", lambda: bundle)

    question = "Sollten Sie sich auf LinkedIn mit dem Interviewer verbinden?"
    use(old)
    with Advisor(home=tmp_home, embedder=FakeEmbedder()) as adv:
        assert {Path(p.path).parent for p in adv.ask(question, llm=False).citations} == {old}
        count = adv.store.count()
        adv.remove(["good-word-timing"])  # the user's choice, kept below

    use(new)
    changed = new / "linkedin-interviewer.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nEin neuer Absatz.\n", encoding="utf-8")
    with Advisor(home=tmp_home, embedder=FakeEmbedder()) as adv:
        answer = adv.ask(question, llm=False)
        assert {Path(p.path).parent for p in answer.citations} == {new}
        assert not [n for n in answer.notes if "since it was ingested" in n]
        docs = adv.documents()
        assert {Path(d.path).parent for d in docs} == {new}  # the old install's copies are not cited
        assert "good-word-timing" not in {d.source for d in docs}  # removed stays removed
        assert all(d.complete for d in docs)
        assert_store_is_consistent(adv)
        assert adv.store.count() < count  # no document twice
        # an explicit ingest of the bundled corpus takes the ids over too, without warnings
        report = adv.ingest()
        assert report.warnings == [] and report.added == 1  # good-word-timing, asked for again

        version = adv.store.version()
    with Advisor(home=tmp_home, embedder=FakeEmbedder()) as adv:  # followed once: nothing to do now
        adv.ask(question, llm=False)
        assert adv.store.version() == version


def test_first_question_ingests_the_bundled_corpus(fake_advisor: Advisor, corpus_dir: Path) -> None:
    passages = fake_advisor.retrieve("LinkedIn Interviewer Vorstellungsgespräch verbinden", k=3)
    assert fake_advisor.store.count() > 0
    assert passages and passages[0].source == "linkedin-interviewer"
    for p in passages:
        assert read_source(p.path)[p.start : p.end] == p.text


def test_extractive_answer_through_the_api(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    answer = fake_advisor.ask("Sollten Sie sich auf LinkedIn mit dem Interviewer verbinden?", llm=False)
    assert answer.mode == "extractive" and not answer.abstained
    assert answer.citations
    for p in answer.citations:
        assert read_source(p.path)[p.start : p.end] == p.text
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert markers and all(1 <= n <= len(answer.citations) for n in markers)
    data = answer.to_dict()
    assert [c["marker"] for c in data["citations"]] == list(range(1, len(answer.citations) + 1))


def test_home_argument_wins_over_environment(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "explicit-home"
    adv = Advisor(home=other, embedder=FakeEmbedder())
    assert adv.settings.home == other
    assert os.environ["ADVISOR_HOME"] == str(tmp_home)


def test_overrides_on_explicit_settings_are_validated(tmp_home: Path) -> None:
    from advisor.errors import ConfigError
    from advisor.settings import load_settings

    with pytest.raises(ConfigError):
        Advisor(settings=load_settings(), embedder=FakeEmbedder(), k=0)


def test_overrides_on_explicit_settings_apply(tmp_home: Path, tmp_path: Path) -> None:
    from advisor.settings import load_settings

    base = load_settings()
    adv = Advisor(tmp_path / "other", settings=base, embedder=FakeEmbedder(), k=base.k + 1)
    assert adv.settings.k == base.k + 1
    assert adv.settings.home == tmp_path / "other"
    assert base.k == load_settings().k  # the caller's object is not modified


def test_fakes_implement_the_protocols() -> None:
    from advisor.embedders import Embedder

    emb = FakeEmbedder()
    assert isinstance(emb, Embedder)
    vecs = emb.embed_documents(["salary offer", "offer salary", "tomato garden"])
    assert vecs.dtype.name == "float32" and vecs.shape == (3, emb.dim)
    assert float(vecs[0] @ vecs[1]) == pytest.approx(1.0)  # bag of words: order does not matter
    assert float(vecs[0] @ vecs[2]) < 0.2
    assert emb.embed_query("salary offer") == pytest.approx(vecs[0])
    gen = FakeGenerator("hello [1].")
    out = gen.chat([{"role": "user", "content": "hi"}], max_tokens=5)
    assert out.text == "hello [1]." and gen.calls == [[{"role": "user", "content": "hi"}]]
    assert out.finish == "stop"
    stopped = gen.chat([{"role": "user", "content": "hi"}], max_tokens=5, on_token=lambda piece: False)
    assert stopped.finish == "abandoned"  # the token sink's stop signal is honoured


def test_questions_from_a_terminal_that_is_not_utf8_are_repaired() -> None:
    latin1 = "¿Cuándo debo pedir una referencia?".encode("latin-1").decode("utf-8", "surrogateescape")
    assert Advisor._check_question(latin1) == "¿Cuándo debo pedir una referencia?"
    assert Advisor._check_question("When\x1b]0;owned\x07 should I ask?") == "When ]0;owned should I ask?"
    with pytest.raises(InputError):
        Advisor._check_question("\x00\x1b\x07")  # nothing but control characters is empty


def test_k_above_the_maximum_is_refused(fake_advisor: Advisor) -> None:
    from advisor.api import MAX_K
    from advisor.settings import Settings

    assert next(m.le for m in Settings.model_fields["k"].metadata if hasattr(m, "le")) == MAX_K
    with pytest.raises(InputError, match=f"between 1 and {MAX_K}"):
        fake_advisor.retrieve("When should I ask?", k=MAX_K + 1)


def test_a_repeated_question_is_answered_from_the_cache(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    first = fake_advisor.ask("When should I ask my contact for a good word?", llm=False)
    again = fake_advisor.ask("When should I ask my contact for a good word?", llm=False)
    assert again.text == first.text and again.citations == first.citations
    assert "answer served from the cache" in again.notes and "answer served from the cache" not in first.notes
    # editing the cited document changes its chunks' ids (content hashes): no stale answer
    cited = Path(first.citations[0].path)
    cited.write_text(cited.read_text(encoding="utf-8") + "\n\nOne more paragraph of advice.\n", encoding="utf-8")
    fake_advisor.ingest([corpus_copy])
    third = fake_advisor.ask("When should I ask my contact for a good word?", llm=False)
    assert "answer served from the cache" not in third.notes


def test_the_advisor_is_a_context_manager_and_usable_after_close(tmp_home: Path, corpus_copy: Path) -> None:
    with Advisor(home=tmp_home, embedder=FakeEmbedder()) as adv:
        adv.ingest([corpus_copy])
        first = adv.ask("When should I ask my contact for a good word?", llm=False)
    assert adv._store is None  # closed by the with block
    again = adv.ask("When should I ask my contact for a good word?", llm=False)  # reopens what it needs
    assert again.text == first.text
    adv.close()


def test_wrong_argument_types_are_input_errors(fake_advisor: Advisor, corpus_copy: Path, tmp_path: Path) -> None:
    # Regression: ingest([""]) ingested the current folder; ask(123) answered "123";
    # k="3" and remove(None) escaped as TypeError; a plain string was read letter by letter.
    fake_advisor.ingest(str(corpus_copy))  # one path, not a list: the whole folder, not its letters
    count = fake_advisor.store.count()
    assert count > 0
    for bad in ([""], ["  "], [None], None.__class__, 42):
        with pytest.raises(InputError):
            fake_advisor.ingest(bad)  # type: ignore[arg-type]
    for bad in (None, [None], 42, [""]):
        with pytest.raises(InputError):
            fake_advisor.remove(bad)  # type: ignore[arg-type]
    for question in (123, None, b"when to ask"):
        with pytest.raises(InputError, match="must be text"):
            fake_advisor.ask(question, llm=False)  # type: ignore[arg-type]
    for k in ("3", 3.5, True):
        with pytest.raises(InputError, match="whole number"):
            fake_advisor.ask("When should I ask?", k=k, llm=False)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="home must be a path"):
        Advisor(home=123)  # type: ignore[arg-type]
    assert fake_advisor.store.count() == count  # nothing was ingested or removed by the mistakes
    report = fake_advisor.remove("good-word-timing")  # one id, not a list
    assert report.removed == 1
