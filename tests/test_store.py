"""The vector store: the ``Store`` protocol and ``ChromaStore``, which implements it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from advisor.api import Advisor
from advisor.errors import StoreError
from advisor.store import ChromaStore, Store


def test_chroma_store_satisfies_the_store_protocol(fake_advisor: Advisor) -> None:
    store = fake_advisor.store
    assert type(store) is ChromaStore  # the only place naming ChromaStore opens it
    assert isinstance(store, Store)  # every member is there (mypy checks the signatures in advisor/api.py)
    members = [name for name in vars(Store) if not name.startswith("_")]
    assert {"count", "upsert", "query"} <= set(members)
    for name in members:
        declared = inspect.signature(getattr(Store, name))
        implemented = inspect.signature(getattr(ChromaStore, name))
        assert list(declared.parameters) == list(implemented.parameters), name
        assert declared.return_annotation == implemented.return_annotation, name


def test_a_home_that_cannot_be_written_is_a_store_error(tmp_path: Path) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("x")
    adv = Advisor(home=home, embedder=FakeEmbedder())
    for action in (lambda: adv.ingest([tmp_path]), lambda: adv.remove(["x"])):
        with pytest.raises(StoreError, match="cannot write to the data directory") as info:
            action()
        assert info.value.exit_code == 5 and "ADVISOR_HOME" in str(info.value)
