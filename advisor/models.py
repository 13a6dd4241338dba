"""Language models: the recommended list, what is installed, and ``pull`` (download + verify).

The recommended GGUF models are described in ``models/recommended.toml`` (name,
Hugging Face repo and file, size, SHA-256, license, languages). A wheel has no
``models/`` folder, so the same file ships as ``advisor/_models.toml``; a test
keeps the two identical.

Pulled models live in ``$ADVISOR_HOME/models/<file>``. A download streams into
``<file>.part`` next to it, is checked (size, GGUF magic, SHA-256 when known)
and only then renamed into place, so the final path never holds a partial or
corrupt file. Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from advisor.errors import ModelError
from advisor.modelparts import DEFAULT_MODEL_FILE, default_model_cache, ensure_default_model, parts_installed

if TYPE_CHECKING:
    from advisor.settings import Settings

__all__ = [
    "DEFAULT_BASE_URL",
    "ModelSpec",
    "check_known_model",
    "file_sha256",
    "human_size",
    "list_models",
    "models_dir",
    "pull_model",
    "recommended",
    "recommended_file",
    "verify_model_file",
]

DEFAULT_BASE_URL = "https://huggingface.co"
GGUF_MAGIC = b"GGUF"
CHUNK_BYTES = 1 << 20  # 1 MiB per read while downloading or hashing
USER_AGENT = "advisor-models-pull/0.1 (+https://huggingface.co)"

ProgressCallback = Callable[[int, int], None]

_REQUIRED_FIELDS: dict[str, type] = {
    "name": str,
    "repo": str,
    "file": str,
    "size_bytes": int,
    "sha256": str,
    "license": str,
    "languages": list,
    "notes": str,
}
_PACKAGE_DIR = Path(__file__).resolve().parent
_EMBEDDED_TOML = _PACKAGE_DIR / "_models.toml"


@dataclass(frozen=True)
class ModelSpec:
    """One recommended model, as described in ``recommended.toml``."""

    name: str
    repo: str
    file: str
    size_bytes: int
    sha256: str  # lowercase hex, or "" when no public hash was found
    license: str
    languages: tuple[str, ...]
    notes: str
    bundled: bool = False
    package: str = ""  # the pip package that ships a bundled model

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """Where ``advisor models pull`` downloads this file from."""
        return f"{base_url.rstrip('/')}/{self.repo}/resolve/main/{self.file}"


# --------------------------------------------------------------------------- recommended list


def recommended_file() -> Path:
    """The TOML file :func:`recommended` reads.

    In a source checkout that is ``models/recommended.toml`` at the repository
    root (recognised by its ``pyproject.toml``); in an installed wheel it is the
    embedded copy ``advisor/_models.toml``.
    """
    root = _PACKAGE_DIR.parent
    candidate = root / "models" / "recommended.toml"
    if candidate.is_file() and (root / "pyproject.toml").is_file():
        return candidate
    return _EMBEDDED_TOML


def _parse_spec(entry: Any, where: str) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ModelError(f"{where}: each [[model]] must be a table")
    label = entry.get("name", "?")
    for key, kind in _REQUIRED_FIELDS.items():
        if key not in entry:
            raise ModelError(f"{where}: model {label!r} has no {key!r} field")
        value = entry[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelError(f"{where}: model {label!r} field {key!r} must be a {kind.__name__}")
    sha = entry["sha256"].strip().lower()
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise ModelError(f'{where}: model {label!r} has a malformed sha256 (64 hex characters or "")')
    if entry["size_bytes"] < 0:
        raise ModelError(f"{where}: model {label!r} has a negative size_bytes")
    if "/" in entry["file"] or "\\" in entry["file"] or entry["file"] in ("", ".", ".."):
        raise ModelError(f"{where}: model {label!r} has an unsafe file name {entry['file']!r}")
    return ModelSpec(
        name=entry["name"],
        repo=entry["repo"],
        file=entry["file"],
        size_bytes=entry["size_bytes"],
        sha256=sha,
        license=entry["license"],
        languages=tuple(str(lang) for lang in entry["languages"]),
        notes=" ".join(entry["notes"].split()),
        bundled=bool(entry.get("bundled", False)),
        package=str(entry.get("package", "")),
    )


def recommended(path: Path | None = None) -> list[ModelSpec]:
    """The recommended models, in file order (the bundled one first)."""
    source = path or recommended_file()
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ModelError(f"cannot read the model list {source} ({exc.strerror}); reinstall advisor") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"the model list {source} is not valid TOML ({exc})") from None
    entries = data.get("model", [])
    if not isinstance(entries, list):
        raise ModelError(f"{source}: 'model' must be an array of tables ([[model]])")
    specs = [_parse_spec(entry, str(source)) for entry in entries]
    seen: set[str] = set()
    for spec in specs:
        if spec.name.lower() in seen:
            raise ModelError(f"{source}: model name {spec.name!r} appears twice")
        seen.add(spec.name.lower())
    return specs


def _find_spec(name: str) -> ModelSpec:
    specs = recommended()
    for spec in specs:
        if spec.name.lower() == name.strip().lower():
            return spec
    known = ", ".join(spec.name for spec in specs)
    raise ModelError(f"unknown model {name!r}; known models: {known} (see advisor models list)")


# --------------------------------------------------------------------------- helpers


def human_size(n_bytes: int) -> str:
    """``1117320736`` -> ``"1.1 GB"`` (decimal units, as Hugging Face shows them)."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover - unreachable


def file_sha256(path: Path, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The lowercase hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def models_dir(settings: Settings) -> Path:
    """Where pulled models live: ``$ADVISOR_HOME/models``."""
    return settings.home / "models"


def _bundled_path(spec: ModelSpec) -> Path | None:
    """Where a model shipped by pip packages is (or, for the default model, will be assembled)."""
    if spec.file == DEFAULT_MODEL_FILE:
        return default_model_cache() / DEFAULT_MODEL_FILE
    from advisor.modelparts import bundled_model_path

    return bundled_model_path()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:  # pragma: no cover - e.g. a symlink loop
        return False


def _problem(path: Path, spec: ModelSpec) -> str | None:
    """What is wrong with ``path`` as ``spec``'s file, or ``None``. Read errors raise :class:`OSError`."""
    size = path.stat().st_size
    if spec.size_bytes and size != spec.size_bytes:
        return f"it has {size} bytes, expected {spec.size_bytes}"
    with path.open("rb") as fh:
        magic = fh.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        return "it is not a GGUF model (bad magic bytes)"
    if spec.sha256:
        actual = file_sha256(path)
        if actual != spec.sha256:
            return f"checksum mismatch: expected sha256 {spec.sha256}, got {actual}"
    return None


def verify_model_file(path: Path, spec: ModelSpec) -> None:
    """Raise :class:`ModelError` unless ``path`` is the file ``spec`` describes.

    Checks, cheapest first: the file exists, its size (when known), the GGUF
    magic bytes, and its SHA-256 (when known).
    """
    hint = f"delete it and run advisor models pull {spec.name}, or pass --model PATH"
    try:
        problem = _problem(path, spec)
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist; run advisor models pull {spec.name}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror}); {hint}") from None
    if problem:
        raise ModelError(f"model file {path} does not match {spec.name}: {problem}; {hint}")


# --------------------------------------------------------------------------- list


def list_models(settings: Settings | None = None) -> list[dict[str, Any]]:
    """One row per model ``advisor models list`` shows.

    Keys: ``name``, ``installed``, ``active`` (what ``advisor ask`` would load
    given ``settings.model`` or the bundled default), ``size`` (human string),
    ``path`` (local file when installed, else ``None``), ``repo``, plus
    ``license`` and ``languages``. A ``settings.model`` that is none of the
    known files gets its own row named ``"configured"``. When ``settings.llm_url``
    is set, answers come from that server and no row is active.
    """
    if settings is None:
        from advisor.settings import load_settings

        settings = load_settings()
    configured = settings.model.expanduser() if settings.model is not None else None
    uses_server = bool(settings.llm_url)
    default = default_model_cache() / DEFAULT_MODEL_FILE
    target = None if uses_server else (configured if configured is not None else default)

    rows: list[dict[str, Any]] = []
    target_listed = False
    for spec in recommended():
        local = _bundled_path(spec) if spec.bundled else models_dir(settings) / spec.file
        # the default model counts as installed when its parts are (it is assembled on first use)
        installed = local is not None and (local.is_file() or (local == default and parts_installed()))
        active = (
            installed and target is not None and local is not None and (local == target or _same_file(local, target))
        )
        target_listed = target_listed or active
        size = local.stat().st_size if installed and local is not None else spec.size_bytes
        rows.append(
            {
                "name": spec.name,
                "installed": installed,
                "active": active,
                "size": human_size(size) if size else "",
                "path": str(local) if installed else None,
                "repo": spec.repo,
                "license": spec.license,
                "languages": list(spec.languages),
            }
        )
    if configured is not None and not target_listed:
        exists = configured.is_file()
        rows.insert(
            0,
            {
                "name": "configured",
                "installed": exists,
                "active": not uses_server,
                "size": human_size(configured.stat().st_size) if exists else "",
                "path": str(configured),
                "repo": "",
                "license": "",
                "languages": [],
            },
        )
    return rows


# --------------------------------------------------------------------------- pull


def _network_error(spec: ModelSpec, url: str, reason: object) -> ModelError:
    return ModelError(
        f"cannot download {spec.name} from {url} ({reason}); check your network connection, "
        f"or download the file yourself and pass --model PATH"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror
        return str(reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed before the end of the file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _write(out: BinaryIO, data: bytes, part: Path) -> None:
    try:
        out.write(data)
    except OSError as exc:
        raise ModelError(f"cannot write {part} ({exc.strerror}); free some space or check permissions") from None


def _download(
    spec: ModelSpec,
    url: str,
    part: Path,
    progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """Stream ``url`` into ``part``; raise :class:`ModelError` on any network, disk or size problem."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        out = part.open("wb")
    except OSError as exc:
        raise ModelError(f"cannot write {part} ({exc.strerror}); check permissions on ADVISOR_HOME") from None
    with out:
        done = announced = 0
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                announced = int(length) if length and length.isdigit() else 0
                if announced and spec.size_bytes and announced != spec.size_bytes:
                    raise ModelError(
                        f"the server offers {announced} bytes for {spec.name}, expected {spec.size_bytes}; "
                        f"the file at {url} may have changed: download it yourself and pass --model PATH"
                    )
                total = announced or spec.size_bytes
                if progress:
                    progress(0, total)
                while chunk := response.read(CHUNK_BYTES):
                    done += len(chunk)
                    if spec.size_bytes and done > spec.size_bytes:
                        raise ModelError(
                            f"the download of {spec.name} from {url} is larger than the expected "
                            f"{spec.size_bytes} bytes; download the file yourself and pass --model PATH"
                        )
                    _write(out, chunk, part)
                    if progress:
                        progress(done, total)
        except ModelError:
            raise
        except (http.client.HTTPException, OSError) as exc:  # URLError, HTTPError, timeouts, resets
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
            raise _network_error(spec, url, _reason(exc)) from None
        if announced and done != announced:
            raise _network_error(spec, url, f"connection closed after {done} of {announced} bytes")
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise ModelError(f"cannot write {part} ({exc.strerror}); free some space or check permissions") from None


def pull_model(
    name: str,
    settings: Settings,
    progress: ProgressCallback | None = None,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = 60.0,
) -> Path:
    """Download the recommended model ``name`` into ``$ADVISOR_HOME/models`` and return its path.

    A file already there that passes :func:`verify_model_file` is returned at
    once. Otherwise ``{base_url}/{repo}/resolve/main/{file}`` streams into
    ``<file>.part``, is verified (size, GGUF magic, SHA-256 when known) and
    renamed into place atomically. ``progress(done_bytes, total_bytes)`` is
    called as bytes arrive (``total_bytes`` is 0 when unknown). Any failure,
    including an exception raised mid-stream, removes the partial file, so the
    final path only ever holds a verified model. The bundled model is never
    downloaded: its packaged path is returned.
    """
    spec = _find_spec(name)
    if spec.bundled and spec.file == DEFAULT_MODEL_FILE:
        return ensure_default_model(progress=progress)  # assembled from its pip parts, not downloaded
    if spec.bundled:
        from advisor.modelparts import bundled_model_path

        bundled = bundled_model_path()
        if bundled is None:
            raise ModelError(
                f"{spec.name} ships with the pip package {spec.package or 'that bundles it'}, which is not "
                f"installed; run pip install {spec.package or 'advisor'} (nothing to download)"
            )
        return bundled

    folder = models_dir(settings)
    final = folder / spec.file
    part = folder / f"{spec.file}.part"
    if final.is_file():
        try:
            verify_model_file(final, spec)
        except ModelError:
            pass  # a stale or corrupt copy: download again and replace it
        else:
            return final
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise ModelError(f"cannot create {folder} ({exc.strerror}); check ADVISOR_HOME") from None
    if spec.size_bytes and free < spec.size_bytes:
        raise ModelError(
            f"not enough disk space in {folder} for {spec.name}: {human_size(spec.size_bytes)} needed, "
            f"{human_size(free)} free; free some space or set ADVISOR_HOME to a larger disk"
        )

    url = spec.url(base_url)
    finished = False
    try:
        _download(spec, url, part, progress, timeout)
        try:
            problem = _problem(part, spec)
        except OSError as exc:
            raise ModelError(f"cannot read {part} ({exc.strerror}); check permissions on ADVISOR_HOME") from None
        if problem:
            raise ModelError(
                f"the download of {spec.name} from {url} failed verification ({problem}) and was deleted; "
                f"try again, or download the file yourself and pass --model PATH"
            )
        try:
            os.replace(part, final)
        except OSError as exc:
            raise ModelError(f"cannot move {part} to {final} ({exc.strerror}); check permissions") from None
        finished = True
    finally:
        if not finished:
            part.unlink(missing_ok=True)
    return final


# --------------------------------------------------------------------------- load-time check


def check_known_model(path: Path, cache_dir: Path | None = None) -> None:
    """Before loading: a file named like a known model must be that model.

    A GGUF whose file name matches an entry of ``recommended()`` (the bundled
    SmolLM2 included) is checked against its size and sha256, so a truncated or
    corrupt download is reported instead of crashing the loader. Other files
    pass. The sha256 of a checked file is remembered in ``cache_dir`` by path,
    size and modification time, so it is computed once.
    """
    matches = [spec for spec in recommended() if spec.file == path.name]
    if not matches:
        return
    try:
        stat = path.stat()
    except OSError:
        return  # check_gguf reports missing files with the right hint
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = cache_dir / "verified-models.txt" if cache_dir else None
    if cache is not None and cache.is_file() and key in cache.read_text(encoding="utf-8").splitlines():
        return
    verify_model_file(path, matches[0])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("a", encoding="utf-8") as fh:
            fh.write(key + "\n")
