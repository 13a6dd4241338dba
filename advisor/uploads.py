"""Documents for the web app: checking and saving uploads, and a stored document's text.

No web library is imported here: the web app (``advisor.server``) calls these
on its worker thread, and tests call them directly.

* An upload is checked *before* anything is written (name, type, size, binary,
  empty), with the same messages ``advisor ingest`` gives, then saved under
  ``<home>/uploads/`` (a temporary file renamed into place, so a failed upload
  never replaces a good file) and ingested from there.
* A document is shown by its stored source id only; the file read is the path
  the store recorded for that id, never a path taken from a request.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.errors import DocumentError, InputError
from advisor.ingest import MAX_BYTES, TEXT_SUFFIXES, _Found, read_document, stored_documents
from advisor.safety import decode_text
from advisor.webguard import UploadTooLarge

if TYPE_CHECKING:
    from advisor.api import Advisor
    from advisor.types import IngestReport

__all__ = ["DEFAULT_MAX_UPLOAD", "UploadTooLarge", "add_upload", "check_upload_name", "document_view", "too_large"]

DEFAULT_MAX_UPLOAD = 10 * 2**20  # bytes; `advisor serve --max-upload-mb` changes it
UPLOAD_SUFFIXES = frozenset({".txt", ".md", ".rst"}) | TEXT_SUFFIXES
_NAME_OK = re.compile(r"[^\w .()+,-]+", re.UNICODE)


def too_large(name: str, limit: int) -> UploadTooLarge:
    """The message ``advisor ingest`` gives for a file over its limit, with the upload limit."""
    size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 2**10:g} KiB"
    return UploadTooLarge(f"{name} is larger than {size}; split it first")


def check_upload_name(name: str) -> str:
    """A safe file name for ``uploads/``: the last part of ``name``, no separators, a text suffix."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("the upload has no file name; send it as ?name=note.md")
    base = re.split(r"[\\/]", name.strip())[-1]
    base = _NAME_OK.sub("_", base).strip(" .")
    if not base or base.startswith("."):
        raise InputError(f"{name!r} is not a usable file name; name the file like note.md")
    suffix = Path(base).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        kind = f"a {suffix} file" if suffix else "a file without an extension"
        raise DocumentError(f"{base} is {kind}; only .txt, .md and .rst files can be added: convert it to text first")
    return base[:160]


@dataclass
class UploadResult:
    source: str
    path: str
    report: IngestReport

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "report": self.report.to_dict()}


def add_upload(advisor: Advisor, name: str, data: bytes, limit: int = DEFAULT_MAX_UPLOAD) -> UploadResult:
    """Check ``data`` as ``advisor ingest`` would, save it as ``uploads/<name>`` and ingest that file.

    Nothing is written when the upload is refused, and a file of the same name
    is only replaced by a good one (that is an update of the same document).
    """
    safe = check_upload_name(name)
    if len(data) > min(limit, MAX_BYTES):
        raise too_large(safe, min(limit, MAX_BYTES))
    folder = advisor.settings.home / "uploads"
    target = folder / safe
    read_document(_Found(target, target), data)  # binary, undecodable or empty: the CLI's messages
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{safe}.{os.getpid()}.part"
        partial.write_bytes(data)
        os.replace(partial, target)
    except OSError as exc:
        raise DocumentError(
            f"cannot save {safe} in {folder} ({exc.strerror or exc}); check the data directory"
        ) from None
    report = advisor.ingest([target])
    return UploadResult(str(target.resolve()), str(target.resolve()), report)


def document_view(advisor: Advisor, source: str) -> dict[str, Any]:
    """A stored document's text as citations count it, looked up by its stored source id.

    When the file still holds what was ingested, ``text`` is its decoded text.
    When it changed or is gone, ``text`` holds the stored passages at their
    offsets (blanks between them), so citation offsets still point at the
    quoted words, and ``state`` says why.
    """
    if not isinstance(source, str) or not source:
        raise InputError("name a document by its source id (see /api/documents)")
    doc = next((d for d in stored_documents(advisor.store, check_files=False) if d.source == source), None)
    if doc is None:
        raise DocumentError(f"no stored document has the id {source!r}; /api/documents lists them")
    text: str | None = None
    state = "missing"
    try:
        path = Path(doc.path)
        if path.is_file() and path.stat().st_size <= MAX_BYTES:
            data = path.read_bytes()
            state = "changed"
            if hashlib.sha256(data).hexdigest() == doc.sha256:
                text, state = decode_text(data)[0], "same"
    except OSError:
        state = "missing"
    if text is None:
        pieces = sorted(
            (int(m.get("start", 0)), int(m.get("end", 0)), c.text)
            for c in advisor.store.all_chunks()
            if (m := c.meta).get("doc_id") == source
        )
        buf = [" "] * max((end for _, end, _ in pieces), default=0)
        for start, end, chunk in pieces:
            if len(chunk) == end - start:
                buf[start:end] = list(chunk)
        text = "".join(buf)
    return {
        "source": doc.source,
        "title": doc.title,
        "lang": doc.lang,
        "path": doc.path,
        "chunks": doc.chunks,
        "state": state,
        "text": text,
    }
