"""Load-time checks: a known model that is not what it claims, and a store Chroma cannot open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from advisor import Advisor
from advisor.errors import ModelError, StoreError
from advisor.generation import BUNDLED_MODEL_FILE, bundled_model_path
from advisor.models import check_known_model


def _advisor_script() -> str:
    return str(Path(sys.executable).with_name("advisor"))


def test_a_corrupt_copy_of_a_known_model_is_refused_before_loading(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    fake = tmp_path / BUNDLED_MODEL_FILE  # same name as the bundled model, wrong bytes
    with bundled.open("rb") as src:
        head = src.read(4 << 20)  # GGUF magic intact: only the size/sha256 check can catch it
    fake.write_bytes(head)
    with pytest.raises(ModelError, match="does not match smollm2") as info:
        check_known_model(fake)
    assert "\n" not in str(info.value)
    adv = Advisor(home=tmp_path / "home", embedder=FakeEmbedder(), model=fake)
    with pytest.raises(ModelError):
        _ = adv.generator


def test_the_real_bundled_model_passes_and_is_remembered(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    check_known_model(bundled, cache_dir=tmp_path)
    remembered = (tmp_path / "verified-models.txt").read_text(encoding="utf-8")
    assert str(bundled.resolve()) in remembered
    check_known_model(bundled, cache_dir=tmp_path)  # second time: from the cache
    assert (tmp_path / "verified-models.txt").read_text(encoding="utf-8") == remembered


def test_unknown_model_names_are_not_checked(tmp_path: Path) -> None:
    other = tmp_path / "my-own-model.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 64)
    check_known_model(other)  # no error: only the loader can judge it


def test_a_store_chroma_cannot_read_is_one_clear_error(tmp_path: Path, tmp_home: Path) -> None:
    """A store from another (e.g. newer) Chroma, or a damaged one: one line, exit 5, nothing deleted."""
    home = tmp_path / "home"
    adv = Advisor(home=home, embedder=FakeEmbedder())
    adv.ingest([Path(__file__).parent.parent / "corpus"])
    adv.close()
    db = home / "chroma" / "chroma.sqlite3"
    assert db.is_file()
    backup = tmp_path / "backup.sqlite3"
    shutil.copy(db, backup)
    db.write_bytes(b"this is not a sqlite database written by this chroma version" * 100)
    with pytest.raises(StoreError) as info:
        Advisor(home=home, embedder=FakeEmbedder()).retrieve("anything")
    assert "\n" not in str(info.value) and "ADVISOR_HOME" in str(info.value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    proc = subprocess.run(
        [_advisor_script(), "ask", "When should I ask?", "--no-llm", "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert db.read_bytes().startswith(b"this is not")  # the advisor did not overwrite the user's store


def test_chroma_failing_mid_ingest_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a full disk made Chroma raise its InternalError out of ingest and sources (exit 70)."""
    from collections import namedtuple

    import advisor.store

    home = tmp_path / "home"
    adv = Advisor(home=home, embedder=FakeEmbedder())
    store = adv.store
    real = store._require()

    class FullDisk:
        def __getattr__(self, name: str) -> object:
            if name in {"upsert", "delete", "get", "count", "query", "modify"}:

                def fail(*args: object, **kwargs: object) -> None:
                    raise RuntimeError("Error in compaction: Failed to apply logs to the metadata segment")

                return fail
            return getattr(real, name)

    store._col = FullDisk()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(advisor.store.shutil, "disk_usage", lambda path: usage(2**21, 2**21, 0))
    for call in (
        lambda: adv.ingest([Path(__file__).parent.parent / "corpus"]),
        adv.documents,
        lambda: store.query(FakeEmbedder().embed_query("x"), 3),
        lambda: store.delete(["x"]),
        store.bump_version,
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert "\n" not in str(info.value) and "the disk is full" in str(info.value)
    adv.close()


def test_a_read_only_store_says_to_make_it_writable_not_to_start_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chromadb

    def read_only(*args: object, **kwargs: object) -> None:
        raise RuntimeError("error returned from database: (code: 8) attempt to write a readonly database")

    monkeypatch.setattr(chromadb, "PersistentClient", read_only)
    with pytest.raises(StoreError) as info:
        _ = Advisor(home=tmp_path / "home", embedder=FakeEmbedder()).store
    message = str(info.value)
    assert "\n" not in message and "readonly database" in message
    assert "make it writable" in message and "--home" in message and "afresh" not in message
