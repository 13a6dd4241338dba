"""Retrieval through the Advisor API: the abstention threshold and hybrid (lexical) signals."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    FakeEmbedder,
)

from advisor.api import Advisor


def test_unrelated_question_abstains_below_the_threshold(tmp_home: Path, corpus_copy: Path) -> None:
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), abstain_threshold=0.3)
    adv.ingest([corpus_copy])
    answer = adv.ask("quantum chromodynamics lattice gluon", llm=False)
    assert answer.abstained and answer.mode == "abstain"
    assert answer.citations == []
    assert answer.retrieved  # it did look: the passages were just too far away
    assert max(p.signals["dense"] for p in answer.retrieved) < 0.3
    assert "threshold" in answer.notes[0]
    # the same question with the threshold off is answered from the nearest passages
    off = Advisor(home=tmp_home, embedder=FakeEmbedder(), abstain_threshold=0.0)
    assert not off.ask("quantum chromodynamics lattice gluon", llm=False).abstained


def test_hybrid_retrieval_adds_lexical_signals(tmp_home: Path, corpus_copy: Path) -> None:
    dense_only = Advisor(home=tmp_home, embedder=FakeEmbedder(), hybrid=False)
    dense_only.ingest([corpus_copy])
    question = "Vorstellungsgespräche LinkedIn Interviewer"
    assert all("bm25" not in p.signals for p in dense_only.retrieve(question))
    hybrid = Advisor(home=tmp_home, embedder=FakeEmbedder(), hybrid=True)
    passages = hybrid.retrieve(question)
    assert any("bm25" in p.signals for p in passages)
    assert passages[0].source == "linkedin-interviewer"
    assert passages[0].score == pytest.approx(1.0, abs=0.05)  # first in both rankings
