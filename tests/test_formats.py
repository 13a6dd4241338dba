"""PDF, HTML and Word documents: readers, exact citations over extracted text, bad files.

The documents are real files made by the libraries people's tools use (fpdf2,
python-docx, hand-written HTML; see ``format_docs.py``); stores are real Chroma
stores in temporary folders. The CLI tests run the ``advisor`` script with the
``test-fake`` embedder (conftest's ``hook_env``); the scenario test runs the real
bundled USE embedder.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import ADVISOR_BIN, FakeEmbedder, assert_no_traceback, run_cli
from format_docs import (
    FOLDER,
    GAPS,
    REFERENCES,
    VIDEO,
    expected_text,
    html_page,
    write_all,
    write_docx,
    write_html,
    write_pdf,
)

from advisor.api import Advisor
from advisor.errors import DocumentError
from advisor.readers import PAGE_BREAK, convert, page_at, read_docx, read_html, read_pdf

TESTS = Path(__file__).resolve().parent
SCENARIOS = TESTS / "scenarios" / "formats.yaml"


def extracted(passage: Any) -> str:
    """The text a converted file's citation points into, opened as the README says."""
    with open(passage.text_path, encoding="utf-8", newline="") as fh:
        return fh.read()


# ============================================================================
# readers
# ============================================================================


def test_the_same_advice_reads_the_same_from_pdf_html_and_docx(tmp_path: Path) -> None:
    """Headings (with their level), paragraphs, list items and a PDF's pages survive each format."""
    pdf = write_pdf(REFERENCES, tmp_path / "a.pdf")
    page = write_html(REFERENCES, tmp_path / "a.html")
    word = write_docx(REFERENCES, tmp_path / "a.docx")
    assert convert(pdf, pdf.read_bytes()).text == expected_text(REFERENCES)
    assert convert(page, page.read_bytes()).text == expected_text(REFERENCES, pages=False)
    assert convert(word, word.read_bytes()).text == expected_text(REFERENCES, pages=False)
    text = expected_text(REFERENCES)
    assert "\n## Whom to choose\n" in text and "\n- Prefer referees" in text  # the structure the chunker reads


def test_pdf_pages_are_kept(tmp_path: Path) -> None:
    pdf = write_pdf(REFERENCES, tmp_path / "a.pdf")
    got = read_pdf(pdf.read_bytes(), pdf)
    assert len(got.pages) == 2 and got.pages[0] == 0
    assert got.text[got.pages[1] - len(PAGE_BREAK) : got.pages[1]] == PAGE_BREAK
    assert page_at(got.pages, got.text.index("Whom to choose")) == 1
    assert page_at(got.pages, got.text.index("How to brief")) == 2


def test_a_saved_page_keeps_its_article_without_scripts_navigation_or_hidden_text(tmp_path: Path) -> None:
    page = write_html(VIDEO, tmp_path / "page.html")
    text = read_html(page.read_bytes(), page).text
    assert text == expected_text(VIDEO)
    dropped = ("tracking", "dataLayer", "Inicio", "cookies", "Ignore all", "AI assistants", "Compartir", "Artículos")
    for furniture in dropped:
        assert furniture not in text


def test_html_ordered_lists_keep_their_numbers_and_entities_are_not_fetched(tmp_path: Path) -> None:
    page = tmp_path / "x.html"
    page.write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<html><body><h2>Steps</h2><ol><li>Call the recruiter.</li><li>Send the notes &amp; thanks. &xxe;</li></ol>"
        b"<p hidden>secret</p><p aria-hidden='true'>secret</p><p style='font-size:0'>secret</p></body></html>"
    )
    text = read_html(page.read_bytes(), page).text
    assert text.startswith("## Steps\n\n1. Call the recruiter.\n2. Send the notes & thanks. &xxe")
    assert "root:" not in text and "secret" not in text  # the entity is text, not the file it names


def test_the_scenario_documents_are_what_their_generator_writes(tmp_path: Path) -> None:
    """tests/data/formats holds what format_docs.py makes (so the scenarios ask about known text)."""
    fresh = write_all(tmp_path)
    for kind, blocks in (("pdf", REFERENCES), ("html", VIDEO), ("docx", GAPS)):
        committed = FOLDER / fresh[kind].name
        assert committed.is_file(), f"run python tests/format_docs.py to write {committed}"
        want = expected_text(blocks, pages=kind == "pdf")
        assert convert(committed, committed.read_bytes()).text == want
        assert convert(fresh[kind], fresh[kind].read_bytes()).text == want


# ============================================================================
# ingest and citations (fake embedder, real Chroma)
# ============================================================================


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(FOLDER, folder)
    (folder / "notes.txt").write_text("Interview notes\nBring two printed copies of your CV.\n", encoding="utf-8")
    return folder


def test_converted_files_are_cited_exactly_in_their_extracted_text(fake_advisor: Advisor, docs: Path) -> None:
    report = fake_advisor.ingest([docs])
    assert report.added == 4 and not report.warnings, report
    texts = fake_advisor.settings.home / "texts" / fake_advisor.settings.collection
    seen: dict[str, set[int]] = {}
    for chunk in fake_advisor.store.all_chunks():
        m = chunk.meta
        if m["path"].endswith(".txt"):
            assert m["text_path"] == "" and m["page"] == 0
            continue
        assert Path(m["text_path"]).parent == texts
        with open(m["text_path"], encoding="utf-8", newline="") as fh:
            assert fh.read()[m["start"] : m["end"]] == chunk.text
        seen.setdefault(Path(m["path"]).suffix, set()).add(m["page"])
    assert seen == {".pdf": {1, 2}, ".html": {0}, ".docx": {0}}
    titles = {d.title for d in fake_advisor.documents()}
    assert {"Preparing your references before the final round", "Lücken im Lebenslauf ehrlich erklären"} <= titles

    answer = fake_advisor.ask("How to brief your referees: send every referee the job description", llm=False)
    assert answer.citations and not answer.notes, answer.notes
    top = answer.citations[0]
    assert top.path.endswith("references-handbook.pdf") and top.page == 2
    for p in answer.citations:
        source = extracted(p) if p.text_path else Path(p.path).read_text(encoding="utf-8")
        assert source[p.start : p.end] == p.text
    cited = answer.to_dict()["citations"][0]
    assert cited["text_path"] == top.text_path and cited["page"] == 2 and cited["path"] == top.path


def test_unchanged_converted_files_are_not_converted_or_embedded_again(
    fake_advisor: Advisor, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import advisor.ingest

    fake_advisor.ingest([docs])
    calls: list[Path] = []
    real = advisor.ingest.convert
    monkeypatch.setattr(advisor.ingest, "convert", lambda path, data: calls.append(path) or real(path, data))
    embedder = fake_advisor.embedder
    assert isinstance(embedder, FakeEmbedder)
    before = embedder.embedded
    again = fake_advisor.ingest([docs])
    assert (again.unchanged, again.added, again.updated) == (4, 0, 0)
    assert calls == [] and embedder.embedded == before
    # the kept text gone (a cleaned home): converted again, nothing re-embedded
    for text in (fake_advisor.settings.home / "texts").rglob("*.txt"):
        text.unlink()
    assert fake_advisor.ingest([docs]).unchanged == 4
    assert len(calls) == 3 and embedder.embedded == before
    assert not advisor.ingest.source_changes(fake_advisor.retrieve("referees job description", k=5))


def test_a_converted_file_changed_or_gone_after_ingest_is_noted(fake_advisor: Advisor, docs: Path) -> None:
    fake_advisor.ingest([docs])
    question = "Coloca la cámara a la altura de los ojos"
    answer = fake_advisor.ask(question, llm=False)
    html = docs / "video-interview.html"
    assert answer.citations[0].path == str(html) and not answer.notes
    html.write_text(html_page(VIDEO[:4]), encoding="utf-8")  # edited: the page lost its last sections
    notes = fake_advisor.ask(question, llm=False).notes
    assert any(f"{html} has changed" in n for n in notes), notes
    assert {d.path: d.file for d in fake_advisor.documents()}[str(html)] == "changed"
    html.unlink()
    assert any(f"{html} is gone" in n for n in fake_advisor.ask(question, llm=False).notes)


def test_an_extracted_text_gone_is_noted_and_removing_a_document_drops_its_text(
    fake_advisor: Advisor, docs: Path
) -> None:
    fake_advisor.ingest([docs])
    question = "Ehrenamtliche Arbeit zählt ebenfalls als Erfahrung"
    cited = fake_advisor.ask(question, llm=False).citations[0]
    assert cited.path.endswith(".docx")
    Path(cited.text_path).unlink()
    assert any("extracted text" in n for n in fake_advisor.ask(question, llm=False).notes)
    fake_advisor.ingest([docs])  # unchanged file, text missing: extracted again
    assert Path(cited.text_path).is_file()
    fake_advisor.remove([cited.path])
    assert not Path(cited.text_path).exists()
    assert len(list(Path(cited.text_path).parent.iterdir())) == 2  # the PDF's and the page's stay


def test_a_missing_reader_library_skips_the_file_and_keeps_its_chunks(
    fake_advisor: Advisor, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_advisor.ingest([docs])
    before = {c.chunk_id for c in fake_advisor.store.all_chunks()}
    write_pdf([*REFERENCES, ("p", "One more paragraph.")], docs / "references-handbook.pdf")  # needs reading
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if pypdf were not installed
    report = fake_advisor.ingest([docs])
    assert len(report.warnings) == 1
    assert "references-handbook.pdf" in report.warnings[0] and "pip install pypdf" in report.warnings[0]
    assert {c.chunk_id for c in fake_advisor.store.all_chunks()} == before


# ============================================================================
# bad files (the advisor command)
# ============================================================================


def _raw_pdf(content: bytes, compress: bool = True) -> bytes:
    """A one-page PDF whose page content stream is ``content``."""
    data = zlib.compress(content, 9) if compress else content
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d %s>>\nstream\n" % (len(data), b"/Filter /FlateDecode " if compress else b"")
        + data
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _encrypted_pdf(source: Path) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _scanned_pdf(tmp_path: Path) -> bytes:
    from fpdf import FPDF
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.new("L", (200, 280), color=235).save(image)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(image), x=10, y=10, w=190)
    return bytes(pdf.output())


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w") as member:
            block = b"<" + b" " * (2**20 - 1)
            for _ in range(300):  # 300 MiB unpacked, about 300 KiB packed
                member.write(block)
    return out.getvalue()


# file name -> what its one warning line says
BAD = {
    "encrypted.pdf": "encrypted",
    "scanned.pdf": "no text layer",
    "corrupt.pdf": "damaged PDF",
    "truncated.pdf": "truncated",
    "bomb.pdf": "decompression bomb",
    "huge.pdf": "larger than 64 MiB",
    "all-script.html": "only scripts",
    "not-a-zip.docx": "not a zip archive",
    "zip-bomb.docx": "zip bomb",
}


def write_bad_files(folder: Path, tmp_path: Path) -> None:
    good_pdf = FOLDER / "references-handbook.pdf"
    files = {
        "encrypted.pdf": _encrypted_pdf(good_pdf),
        "scanned.pdf": _scanned_pdf(tmp_path),
        "corrupt.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n",
        "truncated.pdf": good_pdf.read_bytes()[: good_pdf.stat().st_size // 2],
        "bomb.pdf": _raw_pdf(b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET\n" + b" " * 400_000_000),
        "all-script.html": b"<html><head><script>var a = 1;</script></head><body><script>document.write('x')"
        b"</script><noscript>Enable JavaScript to read this page.</noscript><style>p{}</style></body></html>",
        "not-a-zip.docx": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"an old Word 97 file" * 50,
        "zip-bomb.docx": _zip_bomb(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with (folder / "huge.pdf").open("wb") as fh:  # sparse: 65 MiB on paper, nothing on disk
        fh.write(b"%PDF-1.4\n")
        fh.truncate(65 * 2**20)


# runs one command and writes its exit code and peak RSS (KiB on Linux) to the file named first
PEAK_RSS = (
    "import json, resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[2:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'maxrss_kib': peak}))\n"
)


def test_each_bad_file_is_one_warning_and_the_rest_of_the_batch_is_ingested(
    tmp_path: Path, hook_env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(FOLDER, docs)
    home = tmp_path / "home"
    first = run_cli(["ingest", "--embedder", "test-fake", str(docs)], home, hook_env)
    assert first.returncode == 0 and first.stdout.startswith("3 added"), first.stderr
    adv = Advisor(home=home, embedder=FakeEmbedder())
    before = {c.chunk_id: (c.text, c.meta) for c in adv.store.all_chunks()}
    adv.close()

    write_bad_files(docs, tmp_path)
    write_html(VIDEO[:3], docs / "new-page.html")  # a good file in the same batch
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    usage = tmp_path / "usage.json"
    started = time.perf_counter()
    with out.open("w") as o, err.open("w") as e:
        # through a small wrapper: a child forked from this (large) test process would count its pages
        subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS,
                str(usage),
                str(ADVISOR_BIN),
                "ingest",
                "--embedder",
                "test-fake",
                str(docs),
            ],
            env={**hook_env, "ADVISOR_HOME": str(home)},
            stdout=o,
            stderr=e,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
    seconds = time.perf_counter() - started
    measured = json.loads(usage.read_text())
    code, peak = measured["rc"], measured["maxrss_kib"] * 1024
    stdout, stderr = out.read_text(), err.read_text()
    assert_no_traceback(stdout, stderr)
    assert code == 0, stderr
    assert stdout.startswith("1 added, 0 updated, 3 unchanged, 0 removed"), stdout
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == len(BAD), stderr
    for name, why in BAD.items():
        mine = [ln for ln in lines if f"{docs / name}:" in ln]
        assert len(mine) == 1, (name, stderr)
        assert mine[0].startswith("warning: skipped ") and why in mine[0], mine[0]
    # bounded: the bombs are refused, not unpacked into memory
    assert peak < 1024 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    assert seconds < 120, seconds
    adv = Advisor(home=home, embedder=FakeEmbedder())
    after = {c.chunk_id: (c.text, c.meta) for c in adv.store.all_chunks()}
    assert {k: v for k, v in after.items() if k in before} == before  # the stored files, untouched
    assert {v[1]["path"] for k, v in after.items() if k not in before} == {str(docs / "new-page.html")}
    adv.close()


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.docx"
    with pytest.raises(DocumentError, match=r"x\.docx is not a Word \.docx file"):
        read_docx(b"plain text", bad)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(DocumentError, match="not a Word document"):
        read_docx(archive.getvalue(), bad)
    with pytest.raises(DocumentError, match="not a PDF"):
        read_pdf(b"<html>", tmp_path / "y.pdf")


def test_ask_json_names_the_extracted_text_and_the_page(tmp_path: Path, hook_env: dict[str, str]) -> None:
    home = tmp_path / "home"
    assert run_cli(["ingest", "--embedder", "test-fake", str(FOLDER)], home, hook_env).returncode == 0
    question = "Tell them which company may call and roughly when, so that the call does not catch them by surprise"
    proc = run_cli(["ask", "--json", "--no-llm", "--embedder", "test-fake", question], home, hook_env)
    assert proc.returncode == 0, proc.stderr
    citation = json.loads(proc.stdout)["citations"][0]
    assert citation["path"] == str(FOLDER / "references-handbook.pdf") and citation["page"] == 2
    with open(citation["text_path"], encoding="utf-8", newline="") as fh:
        kept = fh.read()
    assert kept[citation["start"] : citation["end"]] == citation["text"]
    sentence = citation["supporting_sentence"]
    assert sentence and kept[sentence["start"] : sentence["end"]] == sentence["text"]
    text = run_cli(["ask", "--no-llm", "--embedder", "test-fake", question], home, hook_env).stdout
    quote = citation["supporting_sentence"]
    assert f"references-handbook.pdf, page 2, characters {quote['start']}-{quote['end']} of its text" in text


# ============================================================================
# the scenarios (real USE embedder)
# ============================================================================


@pytest.mark.integration
def test_questions_about_each_format_retrieve_and_cite_like_the_same_text(tmp_path: Path, corpus_dir: Path) -> None:
    """formats.yaml over the converted documents, and over their extracted text saved as Markdown.

    Both runs retrieve the same passages with the same scores and cite the same
    offsets: a converted file is retrieved and cited like a text file.
    """
    from advisor.evaluation import load_scenarios

    scenarios = load_scenarios(SCENARIOS)
    langs = {(s.expect_sources[0].rsplit("-", 1)[-1], s.language) for s in scenarios if s.expect_sources}
    assert langs == {(kind, lang) for kind in ("pdf", "html", "docx") for lang in ("en", "es", "de")}
    as_text = tmp_path / "as-text"
    as_text.mkdir()
    manifest = (FOLDER / "corpus.toml").read_text(encoding="utf-8")
    documents = (
        ("references-handbook.pdf", REFERENCES),
        ("video-interview.html", VIDEO),
        ("lebenslauf-luecken.docx", GAPS),
    )
    for name, blocks in documents:
        md = Path(name).with_suffix(".md").name
        (as_text / md).write_text(expected_text(blocks, pages=name.endswith(".pdf")), encoding="utf-8")
        manifest = manifest.replace(f'"{name}"', f'"{md}"')
    (as_text / "corpus.toml").write_text(manifest, encoding="utf-8")
    runs = []
    for folder in (FOLDER, as_text):
        with Advisor(home=tmp_path / folder.name, corpus=[corpus_dir, folder]) as adv:
            runs.append(adv.evaluate(scenarios, llm=False))
    converted, text = runs
    for a, b in zip(converted.results, text.results, strict=True):
        assert [(x["source"], x["score"]) for x in a.retrieved] == [(x["source"], x["score"]) for x in b.retrieved]
        assert [(c["source"], c["start"], c["end"], c["text"]) for c in a.citations] == [
            (c["source"], c["start"], c["end"], c["text"]) for c in b.citations
        ]
    summary = converted.summary["overall"]
    failed = {r.id: r.failures for r in converted.results if not r.passed}
    # floors just under the values measured (README, "PDF, HTML and Word files")
    assert summary["citation_valid"] == 1.0, failed  # every citation equals the extracted text at its offsets
    assert summary["source_hit@5"] >= 0.94, failed
    assert summary["evidence_hit@5"] >= 0.88, failed
    assert summary["citation_recall"] >= 0.8, failed
