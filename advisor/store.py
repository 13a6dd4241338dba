"""The vector store: the :class:`Store` interface and its Chroma implementation.

Ingest, retrieval and the API are typed against :class:`Store`; only
:class:`~advisor.api.Advisor` names :class:`ChromaStore`, where it opens one.

The Chroma collection records the embedder's name and dimension in its
metadata; opening it with another embedder raises
:class:`~advisor.errors.EmbedderMismatchError` with the command that re-indexes.
Telemetry is always off. ``chromadb`` is imported only when a store opens.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from advisor.errors import EmbedderMismatchError, StoreError, first_line

__all__ = ["ChromaStore", "Hit", "Store", "StoredChunk"]

# Chroma reads this at import; set it before anything imports chromadb.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: str
    text: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    text: str
    meta: dict[str, Any]
    similarity: float  # cosine similarity
    embedding: np.ndarray


@runtime_checkable
class Store(Protocol):
    """Where chunks, their embeddings and metadata live: what ingest, retrieval and the API use."""

    def count(self) -> int: ...  # chunks stored
    def version(self) -> int: ...  # grows with every change ingest makes
    def bump_version(self) -> None: ...
    def upsert(
        self, ids: Sequence[str], embeddings: np.ndarray, texts: Sequence[str], metas: Sequence[dict[str, Any]]
    ) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def metadata_index(self) -> Iterator[tuple[str, dict[str, Any]]]: ...  # (chunk id, metadata) of every chunk
    def all_chunks(self) -> Iterator[StoredChunk]: ...
    def get(self, ids: Sequence[str]) -> list[StoredChunk]: ...  # in the order of ids, the missing left out
    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def query(self, embedding: np.ndarray, n: int) -> list[Hit]: ...  # the n nearest chunks, nearest first


def _advice(exc: BaseException, path: Path | None, otherwise: str) -> str:
    """How to fix a Chroma failure: a read-only store or a full disk need other advice than a damaged store."""
    if isinstance(exc, PermissionError) or re.search(r"read-?only|permission denied", first_line(exc), re.I):
        # starting afresh would not help: the store is fine, only not writable
        return (
            "Chroma needs write access to its store even to answer; make it writable, "
            "or copy the data directory somewhere writable and pass --home"
        )
    if path is not None:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(path).free < 16 * 2**20:
                return (
                    "the disk is full: free some space, then run advisor ingest again (it repairs what is incomplete)"
                )
    return otherwise


class ChromaStore:
    """A Chroma collection, embedded (``PersistentClient``) or remote (``HttpClient``).

    Opened (or created, unless ``create`` is false) for ``embedder_name``; ``reset`` empties it first.
    """

    PAGE = 5000

    def __init__(
        self,
        path: Path | None,
        collection: str,
        embedder_name: str,
        dim: int,
        url: str | None = None,
        create: bool = True,
        reset: bool = False,
    ) -> None:
        self.embedder_name = embedder_name
        self.dim = dim
        self._path = path if not url else None
        self._location = url or str(path)
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings
        except ImportError as exc:  # pragma: no cover - core dependency
            raise StoreError("chromadb is not installed; reinstall advisor (pip install .)") from exc
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if url:
                from urllib.parse import urlparse

                parsed = urlparse(url)
                if not parsed.hostname:
                    raise StoreError(f"bad Chroma URL {url!r}; use http://host:port")
                self._client: Any = chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or 8000,
                    ssl=parsed.scheme == "https",
                    settings=chroma_settings,
                )
                self._client.heartbeat()
            else:
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except StoreError:
            raise
        except Exception as exc:
            if url:  # nothing local to move away: the server is down, elsewhere, or refuses us
                fix = (
                    "start the Chroma server (chroma run --path DIR --port N), "
                    "or fix or unset --chroma-url / ADVISOR_CHROMA_URL"
                )
            else:
                fix = _advice(exc, path, "check ADVISOR_HOME, or move the directory away to start afresh")
            raise StoreError(f"cannot open the Chroma store at {url or path} ({first_line(exc)}); {fix}") from None
        self._name = collection
        self._chroma_settings = chroma_settings
        if reset:
            self.drop()
        self._col = self._open(create)
        self._seen = self._key()

    def _open(self, create: bool) -> Any:
        try:
            existing = {c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()}
            if self._name not in existing:
                if not create:
                    return None
                return self._client.create_collection(
                    self._name,
                    metadata={"embedder": self.embedder_name, "dim": self.dim, "version": 0},
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            col = self._client.get_collection(self._name, embedding_function=None)
        except Exception as exc:
            raise StoreError(f"cannot open collection {self._name!r} ({first_line(exc)})") from None
        meta = col.metadata or {}
        if meta.get("embedder") != self.embedder_name or int(meta.get("dim", -1)) != self.dim:
            raise EmbedderMismatchError(
                f"the store at {self._where()} was built with embedder {meta.get('embedder')!r} "
                f"(dim {meta.get('dim')}), not {self.embedder_name!r} (dim {self.dim}); "
                "use the same --embedder, or re-index with 'advisor ingest --reindex'"
            )
        return col

    def _where(self) -> str:
        return f"collection {self._name!r}"

    @contextlib.contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """Chroma's own errors while ``action`` (a full disk, a damaged file) as one-line StoreErrors."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if self._path is None:  # a Chroma server
                hint = "check that the Chroma server is running and reachable, then run the command again"
            else:
                again = "run advisor ingest again; if this persists, move the directory away and ingest afresh"
                hint = _advice(exc, self._path, again)
            raise StoreError(
                f"the Chroma store at {self._location} failed while {action} ({first_line(exc)}); {hint}"
            ) from None

    @property
    def exists(self) -> bool:
        return self._col is not None

    def _require(self) -> Any:
        if self._col is None:
            self._col = self._open(create=True)
        return self._col

    def count(self) -> int:
        if self._col is None:
            return 0
        with self._failing("counting chunks"):
            return int(self._col.count())

    def _metadata(self) -> dict[str, Any]:
        """The collection's metadata as stored now (the collection object's copy is not refreshed)."""
        with self._failing("reading the collection"):
            return dict(self._client.get_collection(self._name, embedding_function=None).metadata or {})

    def version(self) -> int:
        if self._col is None:
            return 0
        return int(self._metadata().get("version", 0))

    def _key(self) -> tuple[int, int]:
        return self.version(), self.count()

    def _catch_up(self) -> int:
        """See what another process wrote since this one last looked; returns the chunk count now.

        An embedded Chroma keeps its vector index in memory: after another
        process ingested or removed documents it would search the old index
        (and return chunks that are gone). The client is opened again then.
        """
        if self._col is None:
            return 0
        if self._path is None:
            return self.count()  # a Chroma server sees every writer
        key = self._key()
        if key != self._seen:
            import chromadb

            with self._failing("opening it again"):
                self._client.close()
                self._client = chromadb.PersistentClient(path=str(self._path), settings=self._chroma_settings)
            self._col = self._open(create=False)
            self._seen = key
        return key[1]

    def bump_version(self) -> None:
        col = self._require()
        meta = self._metadata()
        meta["version"] = int(meta.get("version", 0)) + 1
        meta.pop("hnsw:space", None)
        with self._failing("writing"):
            col.modify(metadata=meta)
        self._seen = self._key()

    def max_batch(self) -> int:
        try:
            return int(self._client.get_max_batch_size())
        except Exception:
            return 1000

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metas: Sequence[dict[str, Any]],
    ) -> None:
        col = self._require()
        step = max(1, min(self.max_batch(), 2000))
        with self._failing("writing chunks"):
            for i in range(0, len(ids), step):
                col.upsert(
                    ids=list(ids[i : i + step]),
                    embeddings=np.asarray(embeddings[i : i + step], dtype=np.float32),
                    documents=list(texts[i : i + step]),
                    metadatas=list(metas[i : i + step]),
                )
        self._seen = self._key()

    def delete(self, ids: Sequence[str]) -> None:
        if not ids or self._col is None:
            return
        step = max(1, min(self.max_batch(), 2000))
        with self._failing("deleting chunks"):
            for i in range(0, len(ids), step):
                self._col.delete(ids=list(ids[i : i + step]))
        self._seen = self._key()

    def _pages(self, include: list[str]) -> Iterator[dict[str, Any]]:
        if self._col is None:
            return
        offset = 0
        while True:
            with self._failing("reading chunks"):
                page = self._col.get(include=include, limit=self.PAGE, offset=offset)
            if not page["ids"]:
                return
            yield page
            offset += len(page["ids"])

    def metadata_index(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for page in self._pages(["metadatas"]):
            yield from zip(page["ids"], page["metadatas"], strict=True)

    def all_chunks(self) -> Iterator[StoredChunk]:
        for page in self._pages(["metadatas", "documents"]):
            for cid, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
                yield StoredChunk(cid, text, dict(meta))

    def get(self, ids: Sequence[str]) -> list[StoredChunk]:
        if self._col is None or not ids:
            return []
        with self._failing("reading chunks"):
            got = self._col.get(ids=list(ids), include=["metadatas", "documents"])
        by_id = {
            cid: StoredChunk(cid, text, dict(meta))
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if self._col is None or not ids:
            return {}
        with self._failing("reading embeddings"):
            got = self._col.get(ids=list(ids), include=["embeddings"])
        return {cid: np.asarray(e, dtype=np.float32) for cid, e in zip(got["ids"], got["embeddings"], strict=True)}

    def query(self, embedding: np.ndarray, n: int) -> list[Hit]:
        total = self._catch_up()  # the count it read is the one the search needs
        if self._col is None or total == 0:
            return []
        with self._failing("searching"):
            res = self._col.query(
                query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                n_results=min(n, total),
                include=["metadatas", "documents", "distances", "embeddings"],
            )
        hits = []
        for cid, text, meta, dist, emb in zip(
            res["ids"][0],
            res["documents"][0],
            res["metadatas"][0],
            res["distances"][0],
            res["embeddings"][0],
            strict=True,
        ):
            if text is None or meta is None:  # deleted by another process since the index was read
                continue
            hits.append(Hit(cid, text, dict(meta), 1.0 - float(dist), np.asarray(emb, dtype=np.float32)))
        return hits

    def drop(self) -> None:
        """Delete the whole collection (``ingest --reindex``)."""
        with contextlib.suppress(Exception):  # absent already: nothing to drop
            self._client.delete_collection(self._name)
        self._col = None
