"""Readers for converted documents: PDF, HTML and Word (.docx) to plain text.

Each reader takes a file's bytes and returns :class:`Extracted`: the text that
is chunked and cited, one block per line (``# `` before a heading, ``- `` or
``1. `` before a list item, paragraphs separated by a blank line), and for a
PDF the offset where each page starts. Ingest keeps that text beside the store
(:func:`text_file`), so a citation's offsets point into a file a reader can open.

Documents are untrusted: nothing is executed (no scripts, no external
entities), hidden HTML is dropped, archives and compressed streams are bounded.
The libraries load only inside the reader that needs them.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import logging
import re
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.errors import DocumentError, first_line

__all__ = [
    "CONVERTED_SUFFIXES",
    "PAGE_BREAK",
    "READERS_VERSION",
    "Extracted",
    "ReaderMissingError",
    "convert",
    "page_at",
    "page_starts",
    "read_docx",
    "read_html",
    "read_pdf",
    "text_file",
    "text_file_sha",
]

# Bumped whenever a reader's output changes, so `advisor ingest` converts stored documents again.
READERS_VERSION = 1
MAX_PAGES = 5000
MAX_CHARS = 32 * 2**20  # extracted characters; more is refused, not half-read
MAX_SECONDS = 120.0  # time for reading one document
MAX_UNPACKED = 256 * 2**20  # bytes a .docx may unpack to (a zip bomb unpacks to far more)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\ufeff]")
_BULLET = re.compile(r"^(?:[•◦▪‣●○■□\-–*]|\d{1,2}[.)])\s")
_SENTENCE_END = tuple(".!?…:;\"'”»)")


@dataclass(frozen=True)
class Extracted:
    """The text of a converted document (a PDF's pages separated by a form-feed line)."""

    text: str
    pages: tuple[int, ...] = ()  # a PDF's: where each page starts in ``text`` (see page_starts)


class ReaderMissingError(DocumentError):
    """The library for a file type is not installed: the file is skipped, its stored chunks kept."""


PAGE_BREAK = "\n\f\n"  # between a PDF's pages in its extracted text


def page_starts(text: str) -> tuple[int, ...]:
    """Where each page of an extracted PDF text starts (pages are separated by :data:`PAGE_BREAK`)."""
    return (0, *(m.end() for m in re.finditer(re.escape(PAGE_BREAK), text)))


def page_at(pages: tuple[int, ...], offset: int) -> int:
    """The 1-based page holding ``offset`` (0 when the document has no pages)."""
    return bisect.bisect_right(pages, offset) if pages else 0


def text_file(folder: Path, sha256: str) -> Path:
    """Where the extracted text of the file with this content hash is kept."""
    return folder / f"{sha256}.r{READERS_VERSION}.txt"


def text_file_sha(path: str | Path) -> str:
    """The content hash of the source file whose extracted text ``path`` holds."""
    return Path(path).name.split(".", 1)[0]


def _clean(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


def _join(blocks: list[tuple[str, str]]) -> str:
    """Blocks (kind, text) as lines: list items one per line, other blocks separated by a blank line."""
    out: list[str] = []
    prev = ""
    for kind, text in blocks:
        if out:
            out.append("\n" if kind == prev == "item" else "\n\n")
        out.append(text)
        prev = kind
    return "".join(out)


def _library(module: str, package: str, kind: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ReaderMissingError(
            f"reading {kind} files needs the {package} package, which is not installed; pip install {package}"
        ) from None


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """A library's log messages and warnings about a damaged file stay out of the output."""
    log = logging.getLogger(logger)
    disabled = log.disabled
    log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.disabled = disabled


def _too_long(path: Path) -> DocumentError:
    return DocumentError(f"{path} holds more than {MAX_CHARS // 2**20} Mi characters of text; split it first")


def _limit(path: Path, text: str) -> str:
    if len(text) > MAX_CHARS:
        raise _too_long(path)
    return text


# -- PDF ----------------------------------------------------------------------


Line = tuple[str, float, float]  # text, font size, height on the page (0, 0 when unknown)


def _page_lines(page: object) -> list[Line]:
    """The lines of a PDF page with the font size each was set in and where it stands."""
    seen: list[tuple[bool, float, float]] = [(False, 0.0, 0.0)]  # per line: has text, size, height

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        scale = abs(tm[3] * cm[3]) or abs(tm[0] * cm[0]) or 1.0
        for i, piece in enumerate(text.split("\n")):
            if i:
                seen.append((False, 0.0, 0.0))
            if piece.strip():
                has, biggest, y = seen[-1]
                seen[-1] = (True, max(biggest, float(size or 0) * scale), y if has else tm[5] * cm[3] + cm[5])

    text: str = page.extract_text(visitor_text=visit)  # type: ignore[attr-defined]
    lines = [ln for ln in text.split("\n") if ln.strip()]
    where = [(size, y) for has, size, y in seen if has]
    if len(where) != len(lines):
        where = [(0.0, 0.0)] * len(lines)  # the visitor saw the page differently: layout rules only
    return [(_clean(line), size, y) for line, (size, y) in zip(lines, where, strict=True)]


def _page_blocks(lines: list[Line], levels: dict[float, int]) -> list[tuple[str, str]]:
    """Lines of a page joined into headings (``levels``: heading level by font size), list items and paragraphs."""
    blocks: list[tuple[str, str]] = []
    widest = max((len(t) for t, _, _ in lines), default=0)
    steps = [a[2] - b[2] for a, b in itertools.pairwise(lines) if a[2] > b[2] and a[1] == b[1]]
    step = statistics.median(steps) if steps else 0.0  # the usual distance between two lines
    last = ""  # the line before, while a paragraph or list item is open
    above = 0.0  # where it stands
    for text, size, y in lines:
        level = levels.get(round(size, 1), 0) if len(text) <= 150 else 0
        if level:
            if blocks and blocks[-1][0] == "heading" and last:  # a heading set over two lines
                blocks[-1] = ("heading", f"{blocks[-1][1]} {text}")
            else:
                blocks.append(("heading", "#" * level + " " + text))
            last, above = text, y
            continue
        if blocks and blocks[-1][0] == "heading":
            last = ""
        # a paragraph's last line ends a sentence well short of the widest line, or space follows it
        ended = last.endswith(_SENTENCE_END) and (len(last) < 0.8 * widest or (step and above - y > 1.25 * step))
        if _BULLET.match(text) or not last or ended:
            blocks.append(("item" if _BULLET.match(text) else "para", text))
        else:
            kind, prev = blocks[-1]
            glue = "" if prev.endswith("-") and text[:1].islower() else " "
            blocks[-1] = (kind, prev + glue + text)
        last, above = text, y
    return blocks


def read_pdf(data: bytes, path: Path) -> Extracted:
    """The text of a PDF, page by page, with headings (larger type) and list items marked."""
    _library("pypdf", "pypdf", "PDF")
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

    if b"%PDF-" not in data[:1024]:
        raise DocumentError(f"{path} is not a PDF (no %PDF header); check the file")
    if b"%%EOF" not in data[-2048:]:
        raise DocumentError(f"{path} is a truncated PDF (its end is missing); download or save it again")
    deadline = time.monotonic() + MAX_SECONDS
    pages: list[list[Line]] = []
    try:
        with _quiet("pypdf"):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError(f"{path} is an encrypted PDF (it needs a password); save an unprotected copy")
            if len(reader.pages) > MAX_PAGES:
                raise DocumentError(f"{path} has more than {MAX_PAGES} pages; split it first")
            chars = 0
            for page in reader.pages:
                pages.append(_page_lines(page))
                chars += sum(len(t) for t, _, _ in pages[-1])
                if chars > MAX_CHARS:
                    raise _too_long(path)
                if time.monotonic() > deadline:
                    raise DocumentError(f"{path} took more than {MAX_SECONDS:.0f} s to read; split or simplify it")
    except DocumentError:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        raise DocumentError(f"{path} is an encrypted PDF that cannot be read ({first_line(exc)})") from None
    except LimitReachedError:
        raise DocumentError(
            f"{path} expands beyond the PDF reader's safety limits (a decompression bomb?); not read"
        ) from None
    except RecursionError:
        raise DocumentError(f"{path} is a damaged PDF (its objects nest without end); not read") from None
    except Exception as exc:  # a damaged file may fail anywhere in the library
        raise DocumentError(f"{path} is a damaged PDF ({type(exc).__name__}: {first_line(exc)}); not read") from None
    weights: dict[float, int] = {}
    for lines in pages:
        for text, size, _ in lines:
            weights[round(size, 1)] = weights.get(round(size, 1), 0) + len(text)
    body = max(weights, key=lambda s: weights[s]) if weights else 0.0
    # type at least 15 % larger than the body text sets headings: the largest is level 1
    bigger = sorted((s for s in weights if body and s >= body * 1.15), reverse=True)[:6]
    levels = {s: i + 1 for i, s in enumerate(bigger)}
    text = PAGE_BREAK.join(_join(_page_blocks(lines, levels)) for lines in pages)
    if not text.strip():
        raise DocumentError(
            f"{path} has no text layer (a scanned or image-only PDF); run OCR on it or save it as text first"
        )
    return Extracted(text, page_starts(text))


# -- HTML ---------------------------------------------------------------------

_DROP = frozenset(
    "script style noscript template iframe frame frameset object embed svg math canvas audio video "
    "nav header footer aside form button select option textarea input label dialog menu head title "
    "meta link base".split()
)
_BLOCK = frozenset(
    "p div section article main blockquote pre table thead tbody tfoot tr td th dl dt dd figure "
    "figcaption address details summary hr center body html".split()
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d])", re.I)


def _hidden(tag: Any) -> bool:
    """Whether an HTML element is hidden (``hidden``, ``aria-hidden``, or a style that hides it)."""
    return (
        tag.has_attr("hidden")
        or str(tag.get("aria-hidden", "")).lower() == "true"
        or bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))
    )


def _list_marker(item: Any) -> str:
    """What a list item starts with: its number in an ordered list, else a dash."""
    parent = item.find_parent(["ol", "ul"])
    if parent is not None and parent.name == "ol":
        number = 1 + sum(1 for s in item.find_previous_siblings("li"))
        return f"{number}. "
    return "- "


class _HtmlBlocks:
    """The blocks of a page as it is walked: headings, paragraphs and list items."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []
        self.buf: list[str] = []
        self.prefix: list[str] = []  # the list marker the next flushed block starts with

    def flush(self, kind: str = "para") -> None:
        text = _clean("".join(self.buf))
        self.buf.clear()
        if text:
            marker = self.prefix.pop() if self.prefix else ""
            self.blocks.append(("item" if marker else kind, marker + text))

    def heading(self, level: int, title: str) -> None:
        self.flush()
        self.prefix.clear()
        if title:
            self.blocks.append(("heading", "#" * level + " " + title))

    def start_item(self, marker: str) -> None:
        self.flush()
        self.prefix[:] = [marker]

    def end_item(self) -> None:
        self.flush()
        self.prefix.clear()


def read_html(data: bytes, path: Path) -> Extracted:
    """The main text of a saved web page: headings, paragraphs and list items; no scripts, nothing hidden."""
    _library("bs4", "beautifulsoup4", "HTML")
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction, Tag
    from bs4.element import NavigableString

    with _quiet("bs4"):
        soup = BeautifulSoup(data, "html.parser")  # Python's own parser: no external entities, nothing run
    root: Tag = soup.find("main") or soup.find("article") or soup.find("body") or soup
    out = _HtmlBlocks()

    def walk(node: Tag, depth: int = 0) -> None:
        if depth > 200:  # absurdly deep markup: the rest is not read
            return
        for child in node.children:
            if isinstance(child, Comment | Declaration | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                out.buf.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _DROP or _hidden(child):
                continue
            name = child.name
            if name == "br":
                out.buf.append(" ")
            elif re.fullmatch(r"h[1-6]", name):
                out.heading(int(name[1]), _clean(child.get_text(" ")))
            elif name == "li":
                out.start_item(_list_marker(child))
                walk(child, depth + 1)
                out.end_item()
            elif name in _BLOCK or name in {"ul", "ol"}:
                out.flush()
                walk(child, depth + 1)
                out.flush()
            else:
                walk(child, depth + 1)

    walk(root)
    out.flush()
    text = _limit(path, _join(out.blocks))
    if not text.strip():
        raise DocumentError(f"{path} has no readable text (only scripts, styles or markup); save the page's text")
    return Extracted(text)


# -- Word ---------------------------------------------------------------------


def _check_zip(data: bytes, path: Path) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DocumentError(
            f"{path} is not a Word .docx file (not a zip archive: an old .doc, or damaged); save it as .docx"
        ) from None
    if "word/document.xml" not in {i.filename for i in infos}:
        raise DocumentError(f"{path} is a zip archive but not a Word document (no word/document.xml)")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED:
        raise DocumentError(
            f"{path} unpacks to {unpacked // 2**20} MiB (more than {MAX_UNPACKED // 2**20} MiB: a zip bomb?); not read"
        )


def read_docx(data: bytes, path: Path) -> Extracted:
    """The text of a Word document: headings (by style), paragraphs, list items and table rows."""
    _library("docx", "python-docx", "Word (.docx)")
    _check_zip(data, path)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        with _quiet("docx"):
            document = docx.Document(io.BytesIO(data))
            blocks: list[tuple[str, str]] = []
            for item in document.iter_inner_content():
                if isinstance(item, Table):
                    for row in item.rows:
                        cells: list[str] = []
                        for cell in row.cells:
                            text = _clean(cell.text)
                            if text and (not cells or cells[-1] != text):  # merged cells repeat
                                cells.append(text)
                        if cells:
                            blocks.append(("para", " | ".join(cells)))
                    continue
                if not isinstance(item, Paragraph):
                    continue
                text = _clean(item.text)
                if not text:
                    continue
                style = (item.style.name if item.style is not None else "") or ""
                level = re.fullmatch(r"Heading (\d)", style)
                numbered = item._p.pPr is not None and item._p.pPr.numPr is not None
                if style == "Title" or level:
                    blocks.append(("heading", "#" * (int(level.group(1)) if level else 1) + " " + text))
                elif style.startswith("List Number"):
                    count = 0
                    while count < len(blocks) and blocks[-1 - count][0] == "item":
                        count += 1
                    blocks.append(("item", f"{count + 1}. {text}"))
                elif style.startswith("List") or numbered:
                    blocks.append(("item", f"- {text}"))
                else:
                    blocks.append(("para", text))
    except DocumentError:
        raise
    except Exception as exc:  # damaged XML inside the archive
        raise DocumentError(f"{path} is a damaged Word document ({type(exc).__name__}: {first_line(exc)})") from None
    text = _limit(path, _join(blocks))
    if not text.strip():
        raise DocumentError(f"{path} has no text")
    return Extracted(text)


READERS: dict[str, Callable[[bytes, Path], Extracted]] = {
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".docx": read_docx,
}
CONVERTED_SUFFIXES = frozenset(READERS)


def convert(path: Path, data: bytes) -> Extracted:
    """The text of the converted document at ``path`` (its bytes are ``data``)."""
    return READERS[path.suffix.lower()](data, path)
