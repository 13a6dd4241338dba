"""Cross-lingual word matching: the score, its cache on disk, and its place in retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FakeEmbedder

from advisor import Advisor
from advisor.embedders import UseEmbedder
from advisor.retrieval import word_threshold
from advisor.settings import load_settings
from advisor.wordmatch import WORD_THRESHOLDS, WordMatcher, content_words


def test_content_words_drop_stop_words_numbers_and_short_words() -> None:
    assert content_words("When should I ask the recruiter, the RECRUITER, in 2 weeks?") == ["ask", "recruiter", "weeks"]
    assert content_words("¿Cuándo debo pedirle a mi contacto?") == ["pedirle", "contacto"]
    assert content_words("") == []


def test_score_sums_the_best_match_of_each_question_word_above_the_threshold() -> None:
    wm = WordMatcher(FakeEmbedder())  # bag of words: a word matches only itself (cosine 1)
    texts = ["salary offer salary negotiation", "tomato garden", "salary"]
    scores = wm.scores("How do I negotiate a salary offer?", texts, threshold=0.9)
    # question words: negotiate, salary, offer -> text 0 matches salary + offer (+ not "negotiate")
    assert scores[0] == pytest.approx(2.0, abs=1e-3)
    assert scores[1] == 0.0
    assert scores[2] == pytest.approx(1.0, abs=1e-3)
    assert wm.scores("the and of", texts, threshold=0.9).tolist() == [0.0, 0.0, 0.0]  # no content words


@pytest.mark.integration
def test_real_words_match_their_translations() -> None:
    use = UseEmbedder()
    wm = WordMatcher(use)
    threshold = WORD_THRESHOLDS[use.name]
    spanish = "El reclutador le agradece la entrevista telefónica."
    german = "Die Personalchefin verbindet sich auf LinkedIn."
    off = "Las plantas de tomate necesitan agua."
    scores = wm.scores("Why did the recruiter ask about my phone interview?", [spanish, german, off], threshold)
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert scores[0] >= 2 * threshold  # recruiter~reclutador, phone~telefónica, interview~entrevista
    assert scores[2] == 0.0


def test_cache_is_saved_atomically_loaded_and_never_recomputed(tmp_path: Path) -> None:
    path = tmp_path / "words" / "fake.npz"
    emb = FakeEmbedder()
    wm = WordMatcher(emb, path)
    assert wm.learn(["salary offer", "offer letter"]) == 3
    wm.save()
    assert path.is_file() and not list(path.parent.glob("*.part"))
    first = wm.vectors(["salary", "letter"])

    emb2 = FakeEmbedder()
    again = WordMatcher(emb2, path)
    assert len(again) == 3
    assert np.array_equal(again.vectors(["salary", "letter"]), first)  # float16 precision both times
    assert emb2.embedded == 0  # loaded, not embedded
    assert again.learn(["salary letter tomato"]) == 1 and emb2.embedded == 1


def test_an_unreadable_or_mismatched_cache_is_ignored(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert len(WordMatcher(FakeEmbedder(), bad)) == 0
    other = tmp_path / "other.npz"
    np.savez(other, words=np.array(["a"]), vectors=np.zeros((1, 3), dtype=np.float16))
    assert len(WordMatcher(FakeEmbedder(), other)) == 0  # another dimension


def test_an_empty_or_garbled_cache_is_ignored(tmp_path: Path) -> None:
    # Regression: an empty file (EOFError) or a garbled array header (TokenError) was an internal error.
    good = tmp_path / "good.npz"
    wm = WordMatcher(FakeEmbedder(), good)
    wm.learn(["salary offer letter"])
    wm.save()
    data = good.read_bytes()
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    garbled = tmp_path / "garbled.npz"
    garbled.write_bytes(data[:100] + b"\xff" * 200 + data[300:])
    for path in (empty, garbled):
        assert len(WordMatcher(FakeEmbedder(), path)) == 0


def test_threshold_defaults_per_embedder_and_weight_zero_turns_it_off(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    assert word_threshold(s, UseEmbedderName()) == WORD_THRESHOLDS["use-multilingual-v3"]
    assert word_threshold(s, FakeEmbedder()) is None  # not calibrated: off
    assert word_threshold(load_settings(home=tmp_path, word_threshold=0.5), FakeEmbedder()) == 0.5
    assert word_threshold(load_settings(home=tmp_path, word_weight=0), UseEmbedderName()) is None


class UseEmbedderName(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(name="use-multilingual-v3")


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Offers\nNegotiate the salary offer with the recruiter before you sign.\n")
    (docs / "b.txt").write_text("Gardens\nThe salary of gardeners rarely covers tomato seeds.\n")
    (docs / "c.txt").write_text("Letters\nA recruiter reads a cover letter for a minute.\n")
    return docs


def test_retrieval_reorders_by_words_and_shows_the_signal(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    question = "How do I negotiate a salary offer with a recruiter?"
    plain = Advisor(home=tmp_path / "h1", embedder=FakeEmbedder(), abstain_threshold=0.0)
    plain.ingest([docs])
    words = Advisor(home=tmp_path / "h2", embedder=FakeEmbedder(), abstain_threshold=0.0, word_threshold=0.9)
    words.ingest([docs])
    assert (tmp_path / "h2" / "words" / "fake-bow.npz").is_file()  # learned at ingest
    assert not (tmp_path / "h1" / "words").exists()  # the signal is off for an uncalibrated embedder

    found = words.search(question)
    top = found.passages[0]
    assert top.path.endswith("a.txt")
    assert top.signals["words"] == pytest.approx(4.0, abs=1e-3)  # negotiate, salary, offer, recruiter
    assert {"dense", "dense_rank", "words", "fused_rank"} <= set(top.signals)
    assert "words_ms" in found.timings
    assert all("words" not in p.signals for p in plain.search(question).passages)
    for adv in (plain, words):
        adv.close()


def test_asking_embeds_only_the_question_words_once_the_store_is_ingested(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    emb: Any = FakeEmbedder()
    adv = Advisor(home=tmp_path / "h", embedder=emb, abstain_threshold=0.0, word_threshold=0.9)
    adv.ingest([docs])
    adv.close()
    emb2: Any = FakeEmbedder()
    again = Advisor(home=tmp_path / "h", embedder=emb2, abstain_threshold=0.0, word_threshold=0.9)
    again.search("negotiate salary tomato")
    assert emb2.embedded == 0  # every word was learned at ingest and read from disk
    again.search("completely unseen vocabulary")
    assert emb2.embedded == 3  # the question's new words only
    again.close()


def test_an_unreadable_cache_is_rebuilt_by_the_next_ingest(tmp_path: Path) -> None:
    # Regression: a garbled cache was ignored but never rebuilt (every question re-embedded every passage word).
    docs = _docs(tmp_path)
    adv = Advisor(home=tmp_path / "h", embedder=FakeEmbedder(), abstain_threshold=0.0, word_threshold=0.9)
    adv.ingest([docs])
    adv.close()
    cache = tmp_path / "h" / "words" / "fake-bow.npz"
    cache.write_bytes(b"")
    again = Advisor(home=tmp_path / "h", embedder=FakeEmbedder(), abstain_threshold=0.0, word_threshold=0.9)
    assert again.ingest([docs]).unchanged == 3
    again.close()
    emb: Any = FakeEmbedder()
    third = Advisor(home=tmp_path / "h", embedder=emb, abstain_threshold=0.0, word_threshold=0.9)
    third.search("negotiate salary tomato")
    assert emb.embedded == 0  # the rebuilt cache holds every stored word
    third.close()
