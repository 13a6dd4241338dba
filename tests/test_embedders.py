"""The embedder backends, for real: USE (default), e5, their fusion, and the
sentence-transformers path exercised with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advisor import Advisor
from advisor.embedders import ConcatEmbedder, E5Embedder, UseEmbedder, make_embedder, packaged_minilm
from advisor.errors import ConfigError, EmbedderMismatchError, ModelError

pytestmark = pytest.mark.integration

EN = "When should I ask my contact to recommend me to the hiring manager?"
ES = "¿Cuándo debo pedirle a mi contacto que me recomiende al gerente de contratación?"
OFF = "The tomato plants need watering twice a week in summer."


def _unit(m: np.ndarray) -> None:
    assert m.dtype == np.float32
    assert np.allclose(np.linalg.norm(m, axis=-1), 1.0, atol=1e-4)


@pytest.fixture(scope="module")
def minilm() -> object:
    return make_embedder("minilm")


def test_use_is_multilingual_and_normalised(use: UseEmbedder) -> None:
    docs = use.embed_documents([ES, OFF])
    _unit(docs)
    q = use.embed_query(EN)
    assert q.shape == (512,)
    assert float(docs[0] @ q) > float(docs[1] @ q) + 0.2  # the Spanish paraphrase is far closer
    assert use.count_tokens(EN) > 5
    assert use.embed_query(EN) is q  # cached


def test_e5_adds_its_prefixes_and_fusion_averages_cosines(use: UseEmbedder) -> None:
    e5 = E5Embedder()
    assert e5.dim == 384
    # "query: " and "passage: " make the same text embed differently
    assert not np.allclose(e5.embed_query(EN), e5.embed_documents([EN])[0])
    both = ConcatEmbedder([use, e5])
    assert both.dim == 512 + 384
    d, q = both.embed_documents([ES])[0], both.embed_query(EN)
    expected = 0.5 * float(use.embed_documents([ES])[0] @ use.embed_query(EN)) + 0.5 * float(
        e5.embed_documents([ES])[0] @ e5.embed_query(EN)
    )
    assert float(d @ q) == pytest.approx(expected, abs=1e-4)


def test_sentence_transformers_path_with_the_packaged_minilm(minilm: object, tmp_path: Path) -> None:
    path = packaged_minilm()
    assert path is not None and (path / "modules.json").is_file()
    emb = minilm
    assert emb.dim == 384 and emb.max_tokens == 256  # type: ignore[attr-defined]
    vecs = emb.embed_documents(["hiring manager recommendation", OFF])  # type: ignore[attr-defined]
    _unit(vecs)
    q = emb.embed_query("Should a friend recommend me to the hiring manager?")  # type: ignore[attr-defined]
    assert float(vecs[0] @ q) > float(vecs[1] @ q)
    # chunks are bounded by the model's own tokenizer: nothing is silently truncated
    adv = Advisor(home=tmp_path, embedder=emb)  # type: ignore[arg-type]
    report = adv.ingest()
    assert report.added == 5
    assert all(emb.count_tokens(c.text) <= emb.max_tokens for c in adv.store.all_chunks())  # type: ignore[attr-defined]
    assert adv.retrieve("LinkedIn interviewer connection", k=3)
    # the same store refuses another embedder, saying how to re-index
    with pytest.raises(EmbedderMismatchError, match="--reindex"):
        Advisor(home=tmp_path).retrieve("anything")


def test_st_prefix_takes_a_local_path(minilm: object) -> None:
    path = packaged_minilm()
    emb = make_embedder(f"st:{path}")
    assert emb.name == minilm.name  # type: ignore[attr-defined]
    assert np.allclose(emb.embed_query(EN), minilm.embed_query(EN), atol=1e-5)  # type: ignore[attr-defined]


def test_bad_embedder_names_and_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown embedder 'nope'"):
        make_embedder("nope")
    with pytest.raises(ModelError, match="cannot load sentence-transformers model") as info:
        make_embedder(f"st:{tmp_path / 'missing-model'}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["bad..name", "-bad"])  # names the hub rejects, after logging a warning
def test_a_failed_st_load_logs_nothing_and_restores_the_loggers(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    monkeypatch.chdir(tmp_path)  # no folder of that name here
    names = ("sentence_transformers", "transformers", "huggingface_hub")
    library = logging.getLogger("sentence_transformers")
    monkeypatch.setattr(library, "level", logging.INFO)  # put back by monkeypatch
    levels = {n: logging.getLogger(n).level for n in names}
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError, match="cannot load sentence-transformers model"):
        make_embedder(f"st:{name}")
    assert [r.getMessage() for r in caplog.records if r.name.split(".")[0] in names] == []  # the error says it all
    assert {n: logging.getLogger(n).level for n in names} == levels  # restored after the load


@pytest.mark.parametrize("name", ["/nonexistent-advisor-model", "./missing", "~/no-such-advisor-model"])
def test_a_st_model_path_that_does_not_exist_says_so(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError, match="no such directory; pass an existing model directory") as info:
        make_embedder(f"st:{name}")
    assert name in str(info.value) and "\n" not in str(info.value)
