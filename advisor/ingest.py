"""Ingest: find documents, read them, chunk, embed and sync the store.

What runs by default (see :mod:`advisor.settings`): with no paths given, the
bundled corpus (``corpus``: empty) is ingested; a folder walk takes .txt, .md,
.markdown, .rst and .text files as text, and converts .pdf, .html and .docx
files to text (kept in the home folder's ``texts/``, so citations point into
it). Each document is chunked to at most ``chunk_tokens`` (256) embedder tokens
and embedded with the configured embedder (``embedder``: use-multilingual) in
batches of ``embed_batch`` (32). Word matching is on (``word_weight`` 0.75), so
the word-match vectors learn the words of each chunk as it is embedded. BM25 is
off (``hybrid`` false) and costs nothing here: its index is built lazily by
:mod:`advisor.retrieval`, only when it is switched on.

Sync is by content hash: a file whose bytes and chunk set are already stored is
skipped before anything is embedded; a changed file gets its new chunks upserted
*before* its old ones are deleted (a crash in between leaves extra chunks that
the next run removes, never a hole); files that disappeared from an ingested
folder are removed. Chunk ids are content hashes, so re-running is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from advisor.chunking import CHUNKER_VERSION, chunk_document
from advisor.embedders import Embedder
from advisor.errors import DocumentError, StoreError
from advisor.lang import detect_language
from advisor.readers import (
    CONVERTED_SUFFIXES,
    READERS_VERSION,
    ReaderMissingError,
    convert,
    page_at,
    page_starts,
    text_file,
    text_file_sha,
)
from advisor.safety import UTF16_BOMS, decode_text, looks_like_instructions
from advisor.store import Store
from advisor.types import Chunk, Document, DocumentInfo, IngestReport, Passage
from advisor.wordmatch import WordMatcher

__all__ = [
    "MANIFEST",
    "SUFFIXES",
    "TEXT_SUFFIXES",
    "bundle_key",
    "bundled_corpus",
    "discover",
    "drop_unused_texts",
    "ingest_paths",
    "read_document",
    "remove_documents",
    "source_changes",
    "stale_bundled_files",
    "stored_documents",
]

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text"})
SUFFIXES = TEXT_SUFFIXES | CONVERTED_SUFFIXES  # what a folder walk ingests
MANIFEST = "corpus.toml"
WRITE_BATCH = 256  # chunks per Chroma write during ingest
MAX_BYTES = 64 * 1024 * 1024  # larger files are refused, not half-read

Progress = Callable[[int, int, int], None]  # files done, files total, chunks embedded


def bundled_corpus() -> Path:
    """The five articles that ship with advisor (inside the wheel, or the repo's ``corpus/``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_corpus", here.parent / "corpus"):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise DocumentError("the bundled corpus is missing; reinstall advisor or pass paths to ingest")


@dataclass(frozen=True)
class _Meta:
    doc_id: str
    title: str = ""
    lang: str = ""


@dataclass
class _Found:
    path: Path
    root: Path
    meta: _Meta | None = None


@dataclass
class _StoredDoc:
    shas: set[str] = field(default_factory=set)
    chunkings: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    expected: int = 0
    root: str = ""
    path: str = ""
    title: str = ""
    lang: str = ""
    bundled: bool = False


def _installed_bundle() -> Path | None:
    """The bundled corpus folder of this install, resolved, if it is there."""
    try:
        return bundled_corpus().resolve()
    except DocumentError:
        return None


def _from_a_bundle(path: str, flagged: bool) -> bool:
    """Whether a stored document came from advisor's bundled corpus (of any install).

    Chunks stored since the flag exists say so; older ones are recognised by the
    wheel's layout (``…/advisor/_corpus/<file>``).
    """
    folder = Path(path).parent
    return flagged or (folder.name == "_corpus" and folder.parent.name == "advisor")


def _read_manifest(folder: Path) -> dict[str, _Meta]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DocumentError(f"cannot read {path}: {exc}; fix or remove the manifest") from None
    out: dict[str, _Meta] = {}
    for i, entry in enumerate(data.get("document", [])):
        if not isinstance(entry, dict) or "file" not in entry or "id" not in entry:
            raise DocumentError(f"{path}: document #{i + 1} needs 'file' and 'id'")
        out[str(entry["file"])] = _Meta(str(entry["id"]), str(entry.get("title", "")), str(entry.get("lang", "")))
    return out


def _utf8_name(path: Path) -> bool:
    """Whether ``path`` can be stored (ids, metadata): names that are not UTF-8 cannot."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def discover(paths: Sequence[Path]) -> tuple[list[_Found], list[str]]:
    """Files to ingest under ``paths`` and warnings for what was skipped.

    Directories are walked without following symlinked folders (no loops);
    symlinked files whose target lies outside the given root are skipped.
    """
    found: list[_Found] = []
    warnings: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DocumentError(f"no such file or directory: {raw}; check the path to ingest")
        root = path.resolve()
        if not _utf8_name(root):
            raise DocumentError(f"{raw!r}: the file name is not valid UTF-8; rename it, then ingest it")
        if not path.is_file() and not path.is_dir():
            raise DocumentError(
                f"{raw} is neither a file nor a folder (a device, pipe or socket); save it as a file first"
            )
        if path.is_file():
            manifest = _read_manifest(root.parent)
            if root not in seen:
                seen.add(root)
                found.append(_Found(root, root, manifest.get(root.name)))
            continue
        for folder, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            manifest = _read_manifest(Path(folder))
            for name in sorted(filenames):
                file = Path(folder) / name
                if name.startswith(".") or file.suffix.lower() not in SUFFIXES:
                    continue
                if not _utf8_name(file):
                    warnings.append(f"skipped {file!r}: the file name is not valid UTF-8; rename it")
                    continue
                try:
                    real = file.resolve(strict=True)
                except (RuntimeError, OSError):  # a symlink loop or a dangling link
                    warnings.append(f"skipped {file}: broken or looping symlink")
                    continue
                if not real.is_relative_to(root):
                    warnings.append(f"skipped {file}: links outside {root}")
                    continue
                if real in seen:
                    continue
                seen.add(real)
                found.append(_Found(real, root, manifest.get(name)))
    return found, warnings


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    text, utf8 = decode_text(data)
    return text, "" if utf8 else f"{path} is neither UTF-8 nor UTF-16; read it as Windows-1252"


def _doc_id(found: _Found) -> str:
    return found.meta.doc_id if found.meta else str(found.path)


# control bytes other than tab, newline, form feed, carriage return and escape (a coloured
# log's): text holds almost none, compressed or encoded data about one byte in ten
_CONTROL_BYTES = frozenset(range(32)) - {9, 10, 12, 13, 27} | {127}
_BINARY = "{path} looks binary, not text; convert it to .txt or .md first"


def _write_text(target: Path, text: str, source: Path) -> None:
    """Keep a converted file's extracted text at ``target`` (written whole, then renamed into place)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"cannot keep the extracted text of {source} in {target.parent} ({exc.strerror or exc}); "
            "pass --home or set ADVISOR_HOME to a writable folder"
        ) from None


def _read_converted(found: _Found, data: bytes, texts: Path | None) -> tuple[str, str, tuple[int, ...]]:
    """A PDF, HTML or Word file's text, where it is kept, and its pages (a PDF's).

    The text is kept under ``texts`` by the file's content hash; a file read
    before is not converted again (so an unchanged re-ingest costs what a text
    file's does).
    """
    sha = hashlib.sha256(data).hexdigest()
    target = text_file(texts, sha) if texts is not None else None
    text = None
    if target is not None and target.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = target.read_bytes().decode("utf-8")
    if text is None:
        text = convert(found.path, data).text
        if target is not None:
            _write_text(target, text, found.path)
    pages = page_starts(text) if found.path.suffix.lower() == ".pdf" else ()
    return text, str(target or ""), pages


def read_document(found: _Found, data: bytes, texts: Path | None = None) -> Document:
    """Decode and describe one file (title, language, stable id).

    A PDF, HTML or Word file is converted to text (kept under ``texts``, see
    :func:`_read_converted`); its offsets then index that text.
    """
    path = found.path
    if path.suffix.lower() in CONVERTED_SUFFIXES:
        converted, text_path, pages = _read_converted(found, data, texts)
        return _describe(found, data, converted, "", text_path, pages)
    head = data[:8192]
    utf16 = data.startswith(UTF16_BOMS)  # its zero bytes are text: the zero test is of characters
    if b"\x00" in head and not utf16:
        raise DocumentError(_BINARY.format(path=path))
    text, note = _decode(data, path)
    if utf16:
        if note:  # a UTF-16 mark, then bytes that are not UTF-16
            raise DocumentError(
                f"{path} starts as UTF-16 text but does not decode (damaged or cut short); save it again"
            )
        if "\x00" in text[: len(head) // 2]:  # UTF-32 (its mark starts like UTF-16's), or data after a mark
            raise DocumentError(_BINARY.format(path=path))
    # not Unicode and more than 1 byte in 20 a control byte: a PDF or archive with no zero byte early on
    elif note and sum(b in _CONTROL_BYTES for b in head) * 20 > len(head):
        raise DocumentError(_BINARY.format(path=path))
    return _describe(found, data, text, note)


def _describe(
    found: _Found, data: bytes, text: str, note: str, text_path: str = "", pages: tuple[int, ...] = ()
) -> Document:
    path = found.path
    if not text.strip():
        raise DocumentError(f"{path} is empty")
    meta = found.meta
    first_line = next((ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()), path.stem)
    title = (meta.title if meta and meta.title else first_line)[:160]
    lang = meta.lang if meta and meta.lang else detect_language(text[:5000])
    doc_id = _doc_id(found)
    sha = hashlib.sha256(data).hexdigest()
    return Document(doc_id, str(path), title, lang, text, sha, note, text_path, pages)


def _stored_docs(store: Store) -> dict[str, _StoredDoc]:
    docs: dict[str, _StoredDoc] = {}
    for cid, meta in store.metadata_index():
        doc = docs.setdefault(str(meta.get("doc_id")), _StoredDoc())
        doc.shas.add(str(meta.get("doc_sha")))
        doc.chunkings.add(str(meta.get("chunking", "")))
        doc.ids.add(cid)
        doc.expected = int(meta.get("n_chunks", 0))
        doc.root = str(meta.get("root", ""))
        doc.path = str(meta.get("path", ""))
        doc.title = str(meta.get("title", ""))
        doc.lang = str(meta.get("lang", ""))
        doc.bundled = _from_a_bundle(doc.path, bool(meta.get("bundled", False)))
    return docs


def _file_sha256(path: str | Path) -> str | None:
    """The sha256 of the file at ``path`` (as ingest records it), or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _file_state(path: str, shas: set[str]) -> str:
    """Whether the file at ``path`` still holds what was stored: same, changed or missing."""
    sha = _file_sha256(path)
    return "missing" if sha is None else "same" if shas == {sha} else "changed"


def stored_documents(store: Store, check_files: bool = True) -> list[DocumentInfo]:
    """One row per stored document, by path; ``check_files`` reads each file to compare it."""
    rows = [
        DocumentInfo(
            source=doc_id,
            path=doc.path,
            title=doc.title,
            lang=doc.lang,
            chunks=len(doc.ids),
            sha256=sorted(doc.shas)[0] if len(doc.shas) == 1 else "",
            complete=len(doc.shas) == 1 and len(doc.ids) == doc.expected,
            file=_file_state(doc.path, doc.shas) if check_files and doc.path else "",
        )
        for doc_id, doc in _stored_docs(store).items()
    ]
    return sorted(rows, key=lambda d: (d.path, d.source))


def drop_unused_texts(store: Store, texts: Path | None) -> None:
    """Delete the extracted texts in ``texts`` that no stored chunk cites any more."""
    if texts is None or not texts.is_dir():
        return
    used = {Path(str(m.get("text_path"))).name for _, m in store.metadata_index() if m.get("text_path")}
    for file in texts.iterdir():
        if file.name not in used and _TEXT_NAME.fullmatch(file.name):
            with contextlib.suppress(OSError):
                file.unlink()


_TEXT_NAME = re.compile(r"[0-9a-f]{64}\.r\d+\.txt")


def remove_documents(store: Store, targets: Sequence[str], texts: Path | None = None) -> IngestReport:
    """Delete the stored documents that ``targets`` name, all or none.

    A target is a source id (as citations show it), a file path, or a folder
    (every stored document under it). A target that matches nothing stops the
    whole removal before anything is deleted, so a typo never half-applies.
    The files themselves are not touched.
    """
    t0 = time.perf_counter()
    stored = _stored_docs(store)
    chosen: dict[str, _StoredDoc] = {}
    for target in targets:
        path = Path(target).expanduser().resolve()
        hits = {
            doc_id: doc
            for doc_id, doc in stored.items()
            if doc_id == target or (doc.path and (Path(doc.path) == path or Path(doc.path).is_relative_to(path)))
        }
        if not hits:
            raise DocumentError(
                f"no stored document matches {target!r}; advisor sources lists the ids and paths that can be removed"
            )
        chosen.update(hits)
    report = IngestReport()
    for doc_id in sorted(chosen):
        ids = sorted(chosen[doc_id].ids)
        store.delete(ids)
        report.removed += 1
        report.chunks_removed += len(ids)
    if chosen:
        store.bump_version()
        drop_unused_texts(store, texts)
    report.seconds = time.perf_counter() - t0
    return report


def bundle_key() -> str:
    """What identifies this install's bundled corpus: its folder and its files' sizes and times."""
    bundle = _installed_bundle()
    if bundle is None:
        return ""
    stats = [(f.name, f.stat()) for f in sorted(bundle.iterdir())]
    return "\n".join([str(bundle), *(f"{name} {st.st_size} {st.st_mtime_ns}" for name, st in stats)])


def stale_bundled_files(store: Store) -> list[Path]:
    """Files of this install's bundled corpus whose stored copies came from elsewhere or differ.

    After advisor is installed again (a new virtualenv, another Python), the
    store still cites the old install's copies of the bundled articles; these
    are the files to ingest so that it cites this install's, with their current
    text. Articles the user removed stay removed; none are added.
    """
    bundle = _installed_bundle()
    if bundle is None:
        return []
    files = {meta.doc_id: bundle / name for name, meta in _read_manifest(bundle).items()}
    stale: list[Path] = []
    for doc_id, doc in _stored_docs(store).items():
        file = files.get(doc_id)
        if file is None or not doc.bundled or not file.is_file():
            continue
        if doc.path != str(file) or doc.shas != {_file_sha256(file)}:
            stale.append(file)
    return sorted(stale)


def _cited_state(p: Passage, texts: dict[str, str | None], shas: dict[str, str | None]) -> str:
    """Whether the cited file still holds ``p``: "same", "gone", "changed" or (a converted file) "text"."""
    if p.text_path:  # a converted file: unchanged since ingest, and its extracted text intact
        if p.path not in shas:
            shas[p.path] = _file_sha256(p.path)
        if shas[p.path] is None:
            return "gone"
        if shas[p.path] != text_file_sha(p.text_path):
            return "changed"
        if p.text_path not in texts:
            try:
                texts[p.text_path] = Path(p.text_path).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                texts[p.text_path] = None
        kept = texts[p.text_path]
        return "same" if kept is not None and kept[p.start : p.end] == p.text else "text"
    if p.path not in texts:
        try:
            path = Path(p.path)
            size = path.stat().st_size
            texts[p.path] = decode_text(path.read_bytes())[0] if size <= MAX_BYTES else ""
        except OSError:
            texts[p.path] = None
    text = texts[p.path]
    return "gone" if text is None else "same" if text[p.start : p.end] == p.text else "changed"


def source_changes(passages: Sequence[Passage]) -> list[str]:
    """One line for each cited file that no longer holds the quoted text where the citation says.

    A citation names a file and character offsets; a file edited, moved or deleted
    after it was ingested would make that pointer wrong while the quote (the
    stored copy) still reads well. Each file is read at most once. For a
    converted file (PDF, HTML, Word) the file is compared by content hash with
    the one ingested, and the quote with its extracted text.
    """
    lines: list[str] = []
    texts: dict[str, str | None] = {}
    shas: dict[str, str | None] = {}
    reported: set[str] = set()
    for p in passages:
        if not p.path or p.path in reported:
            continue
        state = _cited_state(p, texts, shas)
        if state == "same":
            continue
        reported.add(p.path)
        if state == "gone":
            lines.append(
                f"{p.path} is gone (moved or deleted since it was ingested); the quote is the stored copy; "
                f"advisor ingest its new location, or advisor remove {p.source}"
            )
        elif state == "changed":
            lines.append(
                f"{p.path} has changed since it was ingested; the quote is the stored copy; "
                f"advisor ingest {p.path} to update it"
            )
        else:
            lines.append(
                f"the extracted text of {p.path} ({p.text_path}) is gone or was edited; the quote is the "
                f"stored copy; delete that text file if it is there, then advisor ingest {p.path}"
            )
    return lines


def _chunk_meta(doc: Document, chunk: Chunk, n_chunks: int, root: Path, chunking: str, bundled: bool) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "path": doc.path,
        "title": doc.title,
        "lang": doc.lang,
        "start": chunk.start,
        "end": chunk.end,
        "index": chunk.index,
        "n_chunks": n_chunks,
        "doc_sha": doc.sha256,
        "root": str(root),
        "context": chunk.context,
        "part": chunk.part,
        "chunking": chunking,
        "flagged": looks_like_instructions(chunk.text),
        "bundled": bundled,
        "text_path": doc.text_path,
        "page": page_at(doc.pages, chunk.start),
    }


def _relabel(store: Store, ids: list[str], doc: Document, root: Path, bundled: bool) -> None:
    """Store ``ids`` again under ``doc``'s path, title and language, with the vectors they have."""
    chunks = store.get(ids)
    vectors = store.embeddings(ids)
    metas = [
        {**c.meta, "path": doc.path, "title": doc.title, "lang": doc.lang, "root": str(root), "bundled": bundled}
        for c in chunks
    ]
    store.upsert(
        [c.chunk_id for c in chunks], np.stack([vectors[c.chunk_id] for c in chunks]), [c.text for c in chunks], metas
    )


HEADING_ALLOWANCE = 32  # tokens a section heading may add to the title in a chunk's context


def make_chunks(doc: Document, embedder: Embedder, chunk_tokens: int) -> list[Chunk]:
    """Chunk ``doc`` so that every chunk plus its context fits the embedder.

    The budget leaves room for the context (title and heading, at most 90
    characters) so the embedder never truncates; contexts that would not fit
    are dropped rather than cut.
    """
    title_tokens = embedder.count_tokens(doc.title) + HEADING_ALLOWANCE
    budget = max(16, min(chunk_tokens, embedder.max_tokens - title_tokens))
    chunks = chunk_document(doc.doc_id, doc.sha256, doc.title, doc.text, embedder.count_tokens, budget)
    if budget + title_tokens <= embedder.max_tokens:
        return chunks
    # a tiny embedder window: keep the chunk text whole, without context
    return [Chunk(c.chunk_id, c.doc_id, c.index, c.start, c.end, c.text, "") for c in chunks]


@dataclass
class _Writer:
    """Embeds and stores queued chunks in shared batches, and deletes stale chunks only after their replacements.

    Chunks of several documents share batches: one embedder call per ``batch``
    chunks and one Chroma write per ``write`` chunks (a write costs tens of ms
    however small), not one of each per file. A changed document's stale
    chunks are deleted only once all its new chunks are stored, so a crash
    still never leaves a hole.
    """

    store: Store
    embedder: Embedder
    words: WordMatcher | None
    progress: Progress | None
    files: int  # files in this run
    batch: int
    write: int
    queue: list[tuple[Chunk, dict[str, Any]]] = field(default_factory=list)
    queued: int = 0  # chunks queued so far
    stored: int = 0  # chunks embedded and upserted so far
    stale_after: list[tuple[int, list[str]]] = field(default_factory=list)  # (chunks stored first, ids to delete)
    files_done: int = 0

    def add(self, chunks: list[tuple[Chunk, dict[str, Any]]], stale: list[str]) -> None:
        """Queue a document's chunks; ``stale`` (its old ids) go once they are all stored."""
        self.queue.extend(chunks)
        self.queued += len(chunks)
        self.stale_after.append((self.queued, stale))
        self.flush(final=False)

    def flush(self, final: bool) -> None:
        """Store every full write batch (``final``: everything queued), then delete what they replace."""
        while self.queue and (final or len(self.queue) >= self.write):
            part = self.queue[: self.write]
            del self.queue[: self.write]
            texts = [c.embed_text for c, _ in part]
            steps = range(0, len(texts), self.batch)
            vectors = np.concatenate([self.embedder.embed_documents(texts[i : i + self.batch]) for i in steps])
            if self.words is not None:
                self.words.learn(texts)
            self.store.upsert([c.chunk_id for c, _ in part], vectors, [c.text for c, _ in part], [m for _, m in part])
            self.stored += len(part)
            self.tick(self.files_done)  # a long file shows its chunks being stored, not only its end
        while self.stale_after and self.stale_after[0][0] <= self.stored:
            self.store.delete(self.stale_after.pop(0)[1])

    def tick(self, files_done: int) -> None:
        if self.progress:
            self.progress(files_done, self.files, self.stored)


@dataclass
class _Sync:
    """One ingest run: what the store held, what this run has seen, and the report it fills."""

    store: Store
    embedder: Embedder
    chunk_tokens: int
    texts: Path | None
    writer: _Writer
    report: IngestReport
    found_paths: set[str]
    bundle: Path | None
    stored: dict[str, _StoredDoc]
    seen_ids: set[str] = field(default_factory=set)
    changed: bool = False

    def file(self, n: int, item: _Found) -> None:
        """Bring the store in line with one file (``n``: files before it), or skip it with a warning."""
        self.writer.files_done = n
        doc = self._read(n, item)
        if doc is None or not self._claim(item, doc):
            return
        old = self.stored.get(doc.doc_id)
        bundled = self.bundle is not None and item.path.parent == self.bundle
        # a document chunked under other rules or another size is chunked again, and
        # a converted file is converted again (and re-chunked) when a reader changes
        chunking = f"v{CHUNKER_VERSION}:{self.chunk_tokens}"
        doc_chunking = f"{chunking}:r{READERS_VERSION}" if doc.text_path else chunking
        if old and old.shas == {doc.sha256} and old.chunkings == {doc_chunking} and len(old.ids) == old.expected:
            self._keep(old, doc, item.root, bundled)
        else:
            self._replace(old, doc, item.root, doc_chunking, bundled)
        self.writer.tick(n + 1)

    def _read(self, n: int, item: _Found) -> Document | None:
        """The file's document, or None (with a warning) when it cannot be read now."""
        try:
            data = item.path.read_bytes() if item.path.stat().st_size <= MAX_BYTES else None
            if data is None:
                raise DocumentError(f"{item.path} is larger than {MAX_BYTES // 2**20} MiB; split it first")
            return read_document(item, data, self.texts)
        except ReaderMissingError as exc:  # the file may be fine: keep what is stored
            self.report.warnings.append(f"skipped {item.path}: {exc}; its stored chunks are kept")
            self.seen_ids.add(_doc_id(item))
        except DocumentError as exc:
            self._unusable(item, exc)
            self.writer.tick(n + 1)
        except OSError as exc:  # unreadable now (permissions, I/O): keep what is stored
            self.report.warnings.append(f"skipped {item.path}: {exc.strerror or exc}; its stored chunks are kept")
            self.seen_ids.add(_doc_id(item))
        return None

    def _unusable(self, item: _Found, exc: DocumentError) -> None:
        """The file now holds no usable text (emptied, binary, too large): its old chunks go.

        They would answer with text it no longer contains.
        """
        stale_doc = self.stored.get(_doc_id(item))
        if stale_doc is not None and _doc_id(item) not in self.seen_ids:
            self.store.delete(sorted(stale_doc.ids))
            self.report.removed += 1
            self.report.chunks_removed += len(stale_doc.ids)
            self.changed = True
            self.seen_ids.add(_doc_id(item))
            self.report.warnings.append(f"removed {item.path} from the store: {exc}")
        else:
            self.report.warnings.append(f"skipped {item.path}: {exc}")

    def _claim(self, item: _Found, doc: Document) -> bool:
        """Whether ``doc``'s id is this file's to store (not taken by another file); warns when not."""
        if doc.doc_id in self.seen_ids:
            self.report.warnings.append(f"skipped {item.path}: id {doc.doc_id!r} already used by another file")
            return False
        self.seen_ids.add(doc.doc_id)
        if doc.decode_note:
            self.report.warnings.append(doc.decode_note)
        old = self.stored.get(doc.doc_id)
        moved_bundle = bool(old and old.bundled and self.bundle is not None and item.path.parent == self.bundle)
        if (
            old
            and old.path
            and old.path != doc.path
            and old.path not in self.found_paths
            and not moved_bundle
            and Path(old.path).exists()
        ):
            # another file, not part of this run, still exists and holds this id (two
            # manifests naming the same id): replacing it would silently lose that document.
            # The bundled corpus of another install (an old virtualenv) is this install's
            # own copy of the same articles, so this one takes its ids over.
            self.report.warnings.append(
                f"skipped {item.path}: id {doc.doc_id!r} is already used by {old.path}; give one of them another id"
            )
            return False
        return True

    def _keep(self, old: _StoredDoc, doc: Document, root: Path, bundled: bool) -> None:
        """An unchanged document: its chunks stay (relabelled if the same text moved or was retitled)."""
        if (old.path, old.title, old.lang, old.bundled) != (doc.path, doc.title, doc.lang, bundled):
            # the same text moved (or was retitled): its chunks keep their vectors, not its old path
            _relabel(self.store, sorted(old.ids), doc, root, bundled)
            self.report.updated += 1
            self.changed = True
        else:
            self.report.unchanged += 1

    def _replace(self, old: _StoredDoc | None, doc: Document, root: Path, chunking: str, bundled: bool) -> None:
        """A new or changed document: its new chunks are queued, its stale ones go after them."""
        chunks = make_chunks(doc, self.embedder, self.chunk_tokens)
        new_ids = [c.chunk_id for c in chunks]
        stale = sorted((old.ids if old else set()) - set(new_ids))
        self.writer.add([(c, _chunk_meta(doc, c, len(chunks), root, chunking, bundled)) for c in chunks], stale)
        self.report.chunks_added += len(chunks)
        self.report.chunks_removed += len(stale)
        if old:
            self.report.updated += 1
        else:
            self.report.added += 1
        self.changed = True

    def remove_vanished(self, roots: set[str]) -> None:
        """Delete the stored documents under a scanned root that this run did not see.

        Such a document was deleted or renamed (its file is gone) or given another
        id (its file was read under the new one): its chunks go. A file the walk
        skips but the user once named explicitly (a dotfile, another suffix) still
        exists and keeps its chunks.
        """
        scanned = [Path(r) for r in roots]
        for doc_id, old in self.stored.items():
            if doc_id in self.seen_ids or not any(
                Path(old.path) == r or Path(old.path).is_relative_to(r) for r in scanned
            ):
                continue
            if old.path in self.found_paths or not Path(old.path).exists():  # stat only what is under a scanned root
                self.store.delete(sorted(old.ids))
                self.report.removed += 1
                self.report.chunks_removed += len(old.ids)
                self.changed = True


def ingest_paths(
    store: Store,
    embedder: Embedder,
    paths: Sequence[Path],
    chunk_tokens: int,
    batch: int = 32,
    progress: Progress | None = None,
    words: WordMatcher | None = None,
    texts: Path | None = None,
) -> IngestReport:
    """Bring the store in line with the documents under ``paths``.

    ``words``: the word-match vectors learn the words of every chunk embedded.
    ``texts``: the folder that keeps converted files' extracted texts (citations
    point into them); texts no stored chunk names any more are deleted from it.
    """
    t0 = time.perf_counter()
    found, warnings = discover(paths)
    writer = _Writer(store, embedder, words, progress, len(found), batch, max(batch, WRITE_BATCH))
    report = IngestReport(warnings=list(warnings))
    found_paths = {str(f.path) for f in found}
    sync = _Sync(
        store, embedder, chunk_tokens, texts, writer, report, found_paths, _installed_bundle(), _stored_docs(store)
    )
    roots = {str(f.root) for f in found} | {str(Path(p).expanduser().resolve()) for p in paths}
    for n, item in enumerate(found):
        sync.file(n, item)
    writer.files_done = len(found)
    writer.flush(final=True)
    writer.tick(len(found))
    sync.remove_vanished(roots)
    if sync.changed:
        store.bump_version()
        drop_unused_texts(store, texts)
    report.seconds = time.perf_counter() - t0
    return report
