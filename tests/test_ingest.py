"""Ingest through the Advisor API (fake embedder, real embedded Chroma): sync, listing, removing, odd files."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    FakeEmbedder,
    assert_store_is_consistent,
    corpus_files,
    read_source,
    stored,
)

from advisor.api import Advisor
from advisor.chunking import CHUNKER_VERSION
from advisor.errors import DocumentError, EmbedderMismatchError, InputError


# ---------------------------------------------------------------- ingest bookkeeping
def test_ingest_then_reingest_is_idempotent(fake_advisor: Advisor, corpus_copy: Path) -> None:
    n_files = len(corpus_files(corpus_copy))
    first = fake_advisor.ingest([corpus_copy])
    assert (first.added, first.updated, first.unchanged, first.removed) == (n_files, 0, 0, 0)
    assert first.warnings == []
    assert first.chunks_added == fake_advisor.store.count() > n_files
    assert_store_is_consistent(fake_advisor)
    assert {c.meta["doc_id"] for c in stored(fake_advisor)} == {
        "good-word-timing",
        "informational-interviews",
        "linkedin-interviewer",
        "recruiter-asks-after-rejection",
        "second-interview",
    }  # ids come from corpus.toml

    count = fake_advisor.store.count()
    embedder = fake_advisor.embedder
    assert isinstance(embedder, FakeEmbedder)
    embedded_before = embedder.embedded
    second = fake_advisor.ingest([corpus_copy])
    assert (second.added, second.updated, second.unchanged, second.removed) == (0, 0, n_files, 0)
    assert second.chunks_added == second.chunks_removed == 0
    assert fake_advisor.store.count() == count
    assert embedder.embedded == embedded_before  # nothing was embedded again


def test_a_new_chunk_size_rechunks_on_the_next_ingest(tmp_home: Path, corpus_copy: Path) -> None:
    first = Advisor(home=tmp_home, embedder=FakeEmbedder())
    first.ingest([corpus_copy])
    before = {c.chunk_id for c in stored(first)}
    first.close()
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder(), chunk_tokens=64)
    try:
        report = adv.ingest([corpus_copy])
        n = len(corpus_files(corpus_copy))
        assert (report.added, report.updated, report.unchanged) == (0, n, 0)
        after = {c.chunk_id for c in stored(adv)}
        assert len(after) > len(before) and after != before  # smaller chunks, nothing stale left
        assert {c.meta["chunking"] for c in stored(adv)} == {f"v{CHUNKER_VERSION}:64"}
        assert_store_is_consistent(adv)
        assert adv.ingest([corpus_copy]).unchanged == n  # and then it is stable again
    finally:
        adv.close()


def test_modified_and_deleted_files_are_synced(fake_advisor: Advisor, corpus_copy: Path) -> None:
    files = corpus_files(corpus_copy)
    fake_advisor.ingest([corpus_copy])
    changed, deleted = files[0], files[1]
    deleted_id = next(c.meta["doc_id"] for c in stored(fake_advisor) if c.meta["path"] == str(deleted.resolve()))
    old_changed_ids = {c.chunk_id for c in stored(fake_advisor) if c.meta["path"] == str(changed.resolve())}

    changed.write_text(
        read_source(changed) + "\nA brand new closing paragraph about salary negotiation and offers.\n",
        encoding="utf-8",
    )
    deleted.unlink()
    report = fake_advisor.ingest([corpus_copy])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, len(files) - 2, 1)
    assert report.chunks_removed > 0

    chunks = stored(fake_advisor)
    assert deleted_id not in {c.meta["doc_id"] for c in chunks}
    new_changed = [c for c in chunks if c.meta["path"] == str(changed.resolve())]
    assert any("brand new closing paragraph" in c.text for c in new_changed)
    assert {c.chunk_id for c in new_changed}.isdisjoint(old_changed_ids)  # ids are content hashes
    assert_store_is_consistent(fake_advisor)

    # and the new text is what retrieval finds
    top = fake_advisor.retrieve("brand new closing paragraph about salary negotiation", k=1)
    assert "brand new closing paragraph" in top[0].text


def test_a_new_file_is_added_and_found(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    (corpus_copy / "zebra.md").write_text(
        "# Zebra stripes\nZebras negotiate salaries with striped spreadsheets.\n", encoding="utf-8"
    )
    report = fake_advisor.ingest([corpus_copy])
    assert (report.added, report.updated, report.removed) == (1, 0, 0)
    hit = fake_advisor.retrieve("zebras striped spreadsheets", k=1)[0]
    assert hit.source == str((corpus_copy / "zebra.md").resolve())  # no manifest entry: the path is the id
    assert hit.title == "Zebra stripes"
    assert_store_is_consistent(fake_advisor)


# ---------------------------------------------------------------- listing and removing documents
def _with_user_note(corpus_copy: Path, tmp_path: Path) -> Path:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "note.md").write_text("# My note\n\nZebras striped spreadsheets: ask after the first interview.\n")
    return mine


def test_documents_lists_every_stored_document_once(fake_advisor: Advisor, corpus_copy: Path, tmp_path: Path) -> None:
    mine = _with_user_note(corpus_copy, tmp_path)
    assert fake_advisor.documents() == []
    fake_advisor.ingest([corpus_copy, mine])
    docs = fake_advisor.documents()
    per_doc = Counter(str(c.meta["doc_id"]) for c in stored(fake_advisor))
    assert {d.source: d.chunks for d in docs} == dict(per_doc)
    assert len(docs) == len(corpus_files(corpus_copy)) + 1
    note = next(d for d in docs if d.path.endswith("note.md"))
    assert note.source == note.path == str((mine / "note.md").resolve())  # a user file's id is its path
    assert (note.title, note.lang, note.complete) == ("My note", "en", True)
    gw = next(d for d in docs if d.source == "good-word-timing")
    assert gw.lang == "es" and gw.path == str((corpus_copy / "good-word-timing.txt").resolve())
    assert re.fullmatch(r"[0-9a-f]{64}", gw.sha256)


def test_remove_by_source_id_file_path_and_folder(fake_advisor: Advisor, corpus_copy: Path, tmp_path: Path) -> None:
    mine = _with_user_note(corpus_copy, tmp_path)
    fake_advisor.ingest([corpus_copy, mine])
    before = {d.source: d.chunks for d in fake_advisor.documents()}
    version = fake_advisor.store.version()
    assert fake_advisor.retrieve("zebras striped spreadsheets", k=1)[0].path.endswith("note.md")

    report = fake_advisor.remove(["good-word-timing", str(mine / "note.md")])
    assert (report.removed, report.chunks_removed) == (
        2,
        before["good-word-timing"] + before[str(mine.resolve() / "note.md")],
    )
    left = {d.source for d in fake_advisor.documents()}
    assert "good-word-timing" not in left and not any(s.endswith("note.md") for s in left)
    assert fake_advisor.store.version() > version  # answers cached for the old store are not reused
    assert all(not p.path.endswith("note.md") for p in fake_advisor.retrieve("zebras striped spreadsheets", k=5))
    assert_store_is_consistent(fake_advisor)
    assert (mine / "note.md").is_file()  # the file itself is untouched

    report = fake_advisor.remove([corpus_copy])  # a folder: everything under it
    assert report.removed == len(before) - 2
    assert fake_advisor.documents() == [] and fake_advisor.store.count() == 0


def test_remove_is_all_or_nothing(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    count = fake_advisor.store.count()
    with pytest.raises(DocumentError) as info:
        fake_advisor.remove(["second-interview", "second-interveiw"])
    assert "'second-interveiw'" in str(info.value) and "advisor sources" in str(info.value)
    assert info.value.exit_code == 3
    assert fake_advisor.store.count() == count
    for bad in ([], [""], ["  "]):
        with pytest.raises(InputError):
            fake_advisor.remove(bad)
    assert fake_advisor.store.count() == count


def test_a_removed_document_comes_back_on_the_next_ingest(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    count = fake_advisor.store.count()
    fake_advisor.remove(["linkedin-interviewer"])
    report = fake_advisor.ingest([corpus_copy])
    assert (report.added, report.unchanged) == (1, len(corpus_files(corpus_copy)) - 1)
    assert fake_advisor.store.count() == count
    assert_store_is_consistent(fake_advisor)


def test_reindex_rebuilds_the_store(fake_advisor: Advisor, corpus_copy: Path) -> None:
    fake_advisor.ingest([corpus_copy])
    count = fake_advisor.store.count()
    again = fake_advisor.ingest([corpus_copy], reindex=True)
    assert again.added == len(corpus_files(corpus_copy)) and again.unchanged == 0
    assert fake_advisor.store.count() == count
    assert_store_is_consistent(fake_advisor)


def test_a_different_embedder_is_refused_until_reindex(tmp_home: Path, corpus_copy: Path) -> None:
    first = Advisor(home=tmp_home, embedder=FakeEmbedder(name="fake-a", dim=256))
    first.ingest([corpus_copy])
    first.close()

    other = Advisor(home=tmp_home, embedder=FakeEmbedder(name="fake-b", dim=128))
    with pytest.raises(EmbedderMismatchError) as info:
        other.retrieve("when should I ask my contact?")
    message = str(info.value)
    assert "--reindex" in message and "fake-a" in message and "fake-b" in message
    assert "\n" not in message

    report = other.ingest([corpus_copy], reindex=True)
    assert report.added == len(corpus_files(corpus_copy))
    assert other.store.embedder_name == "fake-b"
    assert other.retrieve("LinkedIn interviewer", k=3)
    other.close()
    # and now the first embedder is the stranger
    with pytest.raises(EmbedderMismatchError):
        _ = Advisor(home=tmp_home, embedder=FakeEmbedder(name="fake-a", dim=256)).store


# ---------------------------------------------------------------- odd documents
def test_binary_and_empty_files_are_skipped_with_warnings(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Good advice\nAlways prepare questions for the interviewer.\n", encoding="utf-8")
    (docs / "blob.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (docs / "empty.md").write_bytes(b"")
    (docs / "blank.txt").write_text("  \n\n\t\n", encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    joined = "\n".join(report.warnings)
    for name in ("blob.txt", "empty.md", "blank.txt"):
        assert name in joined, joined
    assert "binary" in joined and "empty" in joined
    assert {Path(c.meta["path"]).name for c in stored(fake_advisor)} == {"good.txt"}


def test_binary_data_without_a_zero_byte_is_skipped_as_binary(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    noise = bytes((i * 7919 + 13) % 255 + 1 for i in range(20_000))  # every byte value but zero
    (docs / "report.txt").write_bytes(noise)
    (docs / "good.txt").write_text("Good advice\nAlways prepare questions for the interviewer.\n", encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    assert any("report.txt looks binary" in w for w in report.warnings), report.warnings
    assert {Path(c.meta["path"]).name for c in stored(fake_advisor)} == {"good.txt"}


def test_ingest_reports_progress_by_file_and_within_a_long_file(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b"):
        (docs / f"{name}.txt").write_text(f"Advice {name}\nPrepare questions for the interviewer.\n", encoding="utf-8")
    long = "\n\n".join(f"Tip {i}: " + " ".join(f"word{i}x{j}" for j in range(60)) for i in range(800))
    (docs / "long.txt").write_text("Many tips\n\n" + long, encoding="utf-8")
    seen: list[tuple[int, int, int]] = []
    report = fake_advisor.ingest([docs], progress=lambda *args: seen.append(args))
    assert report.added == 3
    total = report.chunks_added
    assert total > 300
    assert seen[-1] == (3, 3, total)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in pairwise(seen))  # never goes back
    # chunks of the long file (the third) are reported while it is stored, not only once it is done
    assert any(files == 2 and chunks > 0 for files, _n, chunks in seen), seen


def test_latin1_file_is_ingested_with_a_warning(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "Entrevista de trabajo\nPregúntele al reclutador cuándo tendrá una decisión. Señal de interés.\n"
    (docs / "latin.txt").write_bytes(text.encode("latin-1"))
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    assert any("latin.txt" in w and "UTF-8" in w for w in report.warnings), report.warnings
    chunks = stored(fake_advisor)
    assert "".join(c.text for c in chunks).replace("\n", "") == text.replace("\n", "")  # accents decoded right
    for c in chunks:
        decoded = (docs / "latin.txt").read_bytes().decode("cp1252")
        assert decoded[c.meta["start"] : c.meta["end"]] == c.text


def test_utf16_file_with_a_byte_order_mark_is_ingested_as_text(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "Vorstellungsgespräch\nFragen Sie, wann eine Entscheidung fällt. Schicken Sie danach ein Dankeschön.\n"
    (docs / "notepad.txt").write_bytes(text.encode("utf-16"))  # little-endian with its mark, as Notepad saves
    (docs / "big-endian.txt").write_bytes(b"\xfe\xff" + text.replace("Dankeschön", "Danke").encode("utf-16-be"))
    report = fake_advisor.ingest([docs])
    assert report.added == 2, report.warnings
    assert report.warnings == []
    chunks = stored(fake_advisor)
    assert any("Dankeschön" in c.text for c in chunks)
    for c in chunks:
        decoded = Path(c.meta["path"]).read_bytes().decode("utf-16")
        assert decoded[c.meta["start"] : c.meta["end"]] == c.text


def test_a_byte_order_mark_before_zero_characters_is_binary_not_text(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text = "Interview tips\nAsk when a decision is due. Send a thank-you note afterwards.\n"
    # UTF-32 with its mark starts like UTF-16's (FF FE) and, read as UTF-16, is a zero character in every other
    (docs / "utf32.txt").write_bytes(text.encode("utf-32"))
    (docs / "zeros.txt").write_bytes(b"\xff\xfe" + bytes(4000))
    (docs / "good.txt").write_text(text, encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert report.added == 1, report.warnings
    for name in ("utf32.txt", "zeros.txt"):
        assert any(f"{name} looks binary" in w for w in report.warnings), report.warnings
    assert {Path(c.meta["path"]).name for c in stored(fake_advisor)} == {"good.txt"}
    assert not any("\x00" in c.text for c in stored(fake_advisor))


def test_a_windows_1252_log_with_colour_codes_is_text(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    line = "\x1b[2m[12:00:{i:02}]\x1b[0m \x1b[32mINFO\x1b[0m  Rückmeldung \x1b[1m{i}\x1b[0m erhalten\n"
    log = "".join(line.format(i=i) for i in range(50))  # a coloured log: one byte in ten is an escape
    (docs / "build.log.txt").write_bytes(log.encode("cp1252"))  # the same log in UTF-8 is read as text
    report = fake_advisor.ingest([docs])
    assert report.added == 1, report.warnings
    assert not any("binary" in w for w in report.warnings), report.warnings


def test_a_damaged_utf16_file_says_so_rather_than_binary(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cut.txt").write_bytes("Fragen Sie nach dem Gespräch nach.\n".encode("utf-16") + b"\x41")  # odd length
    report = fake_advisor.ingest([docs])
    assert report.added == 0
    assert any("cut.txt starts as UTF-16 text but does not decode" in w for w in report.warnings), report.warnings


def test_symlinked_directory_loop_does_not_hang(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "a.txt").write_text("Loop test\nFollow up one week after the interview.\n", encoding="utf-8")
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "self").symlink_to(".", target_is_directory=True)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["report"] = fake_advisor.ingest([docs])
        except BaseException as exc:  # surfaced below
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "ingest hung on a symlink loop"
    assert "error" not in result, result.get("error")
    assert result["report"].added == 1


def test_a_looping_file_symlink_is_skipped_not_fatal(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Good advice\nAlways prepare questions.\n", encoding="utf-8")
    (docs / "a.txt").symlink_to(docs / "b.txt")
    (docs / "b.txt").symlink_to(docs / "a.txt")
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    assert any("a.txt" in w for w in report.warnings)


def test_a_symlink_out_of_the_folder_is_skipped(fake_advisor: Advisor, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret\nThis file lives outside the ingested folder.\n", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Good advice\nAlways prepare questions.\n", encoding="utf-8")
    (docs / "link.txt").symlink_to(outside)
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    assert any("link.txt" in w and "outside" in w for w in report.warnings)


def test_nonexistent_path_is_a_document_error(fake_advisor: Advisor, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DocumentError) as info:
        fake_advisor.ingest([missing])
    assert str(missing) in str(info.value)
    assert info.value.exit_code == 3


# Regression: an emptied file used to keep its old chunks in the store.
def test_emptying_an_ingested_file_removes_its_chunks(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("Keep this\nPrepare questions for the interviewer.\n", encoding="utf-8")
    secret = docs / "secret.txt"
    secret.write_text("Old notes\nMy salary at Acme was 123456 and I hated my boss.\n", encoding="utf-8")
    fake_advisor.ingest([docs])
    secret.write_text("", encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert report.removed == 1 and report.unchanged == 1
    assert any("secret.txt" in w for w in report.warnings)
    assert all("123456" not in c.text for c in stored(fake_advisor))
    assert_store_is_consistent(fake_advisor)


def test_a_deleted_file_is_removed_even_if_first_ingested_on_its_own(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    alpha, beta = docs / "alpha.txt", docs / "beta.txt"
    alpha.write_text("Alpha notes\nAlpha talks about salary offers and recruiters.\n", encoding="utf-8")
    beta.write_text("Beta notes\nBeta talks about LinkedIn invitations.\n", encoding="utf-8")
    fake_advisor.ingest([alpha])
    assert fake_advisor.ingest([docs]).added == 1  # beta is new, alpha unchanged
    alpha.unlink()
    report = fake_advisor.ingest([docs])
    assert report.removed == 1
    assert {Path(c.meta["path"]).name for c in stored(fake_advisor)} == {"beta.txt"}


def test_changing_a_document_id_in_the_manifest_does_not_duplicate_it(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "alpha.txt").write_text("Alpha notes\nAlpha talks about salary offers and recruiters.\n", encoding="utf-8")
    fake_advisor.ingest([docs])
    (docs / "corpus.toml").write_text('[[document]]\nfile = "alpha.txt"\nid = "alpha"\n', encoding="utf-8")
    fake_advisor.ingest([docs])
    assert {c.meta["doc_id"] for c in stored(fake_advisor)} == {"alpha"}
    assert_store_is_consistent(fake_advisor)


def test_a_folder_ingest_keeps_files_that_were_named_explicitly(fake_advisor: Advisor, tmp_path: Path) -> None:
    # Regression: ingesting a folder deleted the chunks of files under it that its
    # walk skips (other suffixes, dot-folders) although the user had named them.
    docs = tmp_path / "docs"
    (docs / ".private").mkdir(parents=True)
    (docs / "a.md").write_text("# A\nAlpha advice about recruiters.\n", encoding="utf-8")
    (docs / "notes.log").write_text("Notes about salary offers.\n", encoding="utf-8")
    (docs / ".private" / "prep.txt").write_text("Prep for the second interview.\n", encoding="utf-8")
    fake_advisor.ingest([docs / "notes.log", docs / ".private" / "prep.txt"])
    report = fake_advisor.ingest([docs])
    assert (report.added, report.removed) == (1, 0)
    assert {Path(d.path).name for d in fake_advisor.documents()} == {"a.md", "notes.log", "prep.txt"}
    # a file that is really gone still goes
    (docs / "notes.log").unlink()
    report = fake_advisor.ingest([docs])
    assert report.removed == 1
    assert {Path(d.path).name for d in fake_advisor.documents()} == {"a.md", "prep.txt"}
    assert_store_is_consistent(fake_advisor)


def _manifest_folder(folder: Path, doc_id: str, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "notes.md").write_text(text, encoding="utf-8")
    (folder / "corpus.toml").write_text(f'[[document]]\nfile = "notes.md"\nid = "{doc_id}"\n', encoding="utf-8")
    return folder


def test_an_id_held_by_another_existing_file_is_not_taken_over(fake_advisor: Advisor, tmp_path: Path) -> None:
    # Regression: two manifests naming the same id, ingested in separate runs,
    # silently replaced the first document with the second.
    a = _manifest_folder(tmp_path / "A", "notes", "# A\nAlpha advice about recruiters.\n")
    b = _manifest_folder(tmp_path / "B", "notes", "# B\nBravo advice about salary offers.\n")
    fake_advisor.ingest([a])
    report = fake_advisor.ingest([b])
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert any("'notes' is already used by" in w and str(a / "notes.md") in w for w in report.warnings)
    assert [d.path for d in fake_advisor.documents()] == [str((a / "notes.md").resolve())]
    # once A's file is gone, B's file is the document with that id (a move)
    shutil.rmtree(a)
    report = fake_advisor.ingest([b])
    assert report.updated == 1 and not report.warnings
    assert [d.path for d in fake_advisor.documents()] == [str((b / "notes.md").resolve())]
    assert_store_is_consistent(fake_advisor)


def test_swapping_two_ids_in_one_manifest_updates_both(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.md").write_text("# X\nXylophone advice.\n", encoding="utf-8")
    (docs / "y.md").write_text("# Y\nYodel advice.\n", encoding="utf-8")
    manifest = '[[document]]\nfile = "x.md"\nid = "{}"\n[[document]]\nfile = "y.md"\nid = "{}"\n'
    (docs / "corpus.toml").write_text(manifest.format("one", "two"), encoding="utf-8")
    fake_advisor.ingest([docs])
    (docs / "corpus.toml").write_text(manifest.format("two", "one"), encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert not report.warnings
    assert {d.source: Path(d.path).name for d in fake_advisor.documents()} == {"two": "x.md", "one": "y.md"}
    assert_store_is_consistent(fake_advisor)


def test_file_names_that_are_not_utf8_are_skipped_with_a_warning(fake_advisor: Advisor, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    odd = docs / os.fsdecode(b"caf\xe9.md")
    odd.write_text("Cafe advice.\n", encoding="utf-8")
    (docs / "normal.txt").write_text("Normal advice about recruiters.\n", encoding="utf-8")
    report = fake_advisor.ingest([docs])
    assert report.added == 1
    assert any("not valid UTF-8" in w for w in report.warnings)
    with pytest.raises(DocumentError, match="not valid UTF-8"):
        fake_advisor.ingest([odd])


def test_a_device_or_pipe_is_refused(fake_advisor: Advisor, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (Path("/dev/null"), fifo):
        with pytest.raises(DocumentError, match="neither a file nor a folder") as info:
            fake_advisor.ingest([path])
        assert info.value.exit_code == 3
