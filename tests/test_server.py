"""advisor serve: the HTTP JSON API, its safety checks and its behaviour under concurrent use.

Real components throughout: the bundled USE embedder, an embedded Chroma store
in a temporary home, uvicorn on a free loopback port (``web_server``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_MAX_UPLOAD, run_advisor

pytestmark = pytest.mark.integration

QUESTION = "My contact knows the hiring manager, when should I ask?"
QUESTIONS = [
    QUESTION,
    "Should I connect with my interviewer on LinkedIn?",
    "¿Por qué la reclutadora me preguntó cómo me fue si ya me habían rechazado?",
    "Soll ich mich vor dem Gespräch mit dem Interviewer auf LinkedIn verbinden?",
    "How do I thank someone who referred me?",
]
EVIL = (
    "# Zyxwv gadget care\n\n"
    'Zyxwv gadgets need oiling every spring. <script>window.__pwned = 1; alert("x")</script> '
    'Oil the zyxwv gadget hinge with two drops. <img src=x onerror="window.__pwned = 2">\n'
)


@pytest.fixture(scope="module")
def client(web_server: Any) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=web_server.url, timeout=300) as c:
        yield c


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between two identical asks: timings and the cache note."""
    out = {k: v for k, v in answer.items() if k != "timings"}
    out["notes"] = [n for n in answer["notes"] if n != "answer served from the cache"]
    return out


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for frame in text.split("\n\n"):
        lines = frame.splitlines()
        names = [ln[6:].strip() for ln in lines if ln.startswith("event:")]
        data = [ln[5:].strip() for ln in lines if ln.startswith("data:")]
        if names and data:
            events.append((names[0], json.loads("\n".join(data))))
    return events


# -- the API -------------------------------------------------------------------------


def test_ask_json_is_the_python_apis_answer_to_dict(client: Any, web_advisor: Any) -> None:
    got = client.post("/api/ask", json={"question": QUESTION, "llm": False})
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["mode"] == "extractive" and data["citations"], data
    expected = json.loads(json.dumps(web_advisor.ask(QUESTION, llm=False).to_dict()))
    assert comparable(data) == comparable(expected)
    assert set(data) == set(expected)  # the same keys as advisor ask --json
    first = data["citations"][0]
    assert first["supporting_sentence"]["text"] in first["text"]


def test_ask_with_history_is_the_python_apis_follow_up(client: Any, web_advisor: Any) -> None:
    follow = "And what should I say in the message?"
    got = client.post("/api/ask", json={"question": follow, "history": [QUESTION], "llm": False})
    assert got.status_code == 200, got.text
    expected = web_advisor.ask(follow, llm=False, history=[QUESTION]).to_dict()
    assert comparable(got.json()) == comparable(json.loads(json.dumps(expected)))


def test_ask_stream_sends_the_answer_as_server_sent_events(client: Any, web_advisor: Any) -> None:
    with client.stream("POST", "/api/ask/stream", json={"question": QUESTION, "llm": False}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = sse_events(body)
    assert [name for name, _ in events] == ["answer"]  # extractive: nothing is written token by token
    expected = json.loads(json.dumps(web_advisor.ask(QUESTION, llm=False).to_dict()))
    assert comparable(events[0][1]) == comparable(expected)


def test_ask_stream_with_the_model_sends_tokens_then_the_checked_answer(client: Any) -> None:
    """The bundled model's draft arrives as token events before the final answer event."""
    with client.stream("POST", "/api/ask/stream", json={"question": QUESTION, "llm": True, "timeout": 120}) as r:
        assert r.status_code == 200
        body = "".join(r.iter_text())
    events = sse_events(body)
    names = [name for name, _ in events]
    assert names[-1] == "answer", names
    assert names.count("token") >= 1 and set(names[:-1]) == {"token"}, names
    assert "".join(data["text"] for name, data in events if name == "token").strip()
    assert events[-1][1]["mode"] in {"llm", "extractive"}


def test_ask_errors_are_one_line_json_with_the_cli_exit_code(client: Any) -> None:
    empty = client.post("/api/ask", json={"question": "   "})
    assert empty.status_code == 400
    assert empty.json() == {"error": empty.json()["error"], "exit_code": 2}
    assert "the question is empty" in empty.json()["error"]
    bad_k = client.post("/api/ask", json={"question": QUESTION, "k": 0})
    assert bad_k.status_code == 400 and "\n" not in bad_k.json()["error"] and "k" in bad_k.json()["error"]
    stream = client.post("/api/ask/stream", json={"question": ""})
    events = sse_events(stream.text)
    assert events and events[-1][0] == "error" and events[-1][1]["exit_code"] == 2


def test_retrieve_returns_the_python_apis_passages(client: Any, web_advisor: Any) -> None:
    got = client.post("/api/retrieve", json={"question": QUESTION, "k": 3})
    assert got.status_code == 200
    expected = [p.to_dict() for p in web_advisor.retrieve(QUESTION, k=3)]
    assert got.json()["passages"] == json.loads(json.dumps(expected))


def test_openapi_schema_lists_every_endpoint(client: Any) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/ask", "post"),
        ("/api/ask/stream", "post"),
        ("/api/retrieve", "post"),
        ("/api/documents", "get"),
        ("/api/documents", "post"),
        ("/api/documents", "delete"),
        ("/api/document", "get"),
        ("/api/evaluate", "post"),
    ]:
        assert method in paths[path], (path, method)
    citation = schema["components"]["schemas"]["Citation"]["properties"]
    assert {"start", "end", "supporting_sentence", "translation"} <= set(citation)
    assert client.get("/docs").status_code == 404  # the interactive docs would load scripts from a CDN


def test_evaluate_takes_a_scenario_file_and_returns_summary_and_report(client: Any) -> None:
    scenarios = Path(__file__).parent / "scenarios" / "smoke.jsonl"
    got = client.post(
        "/api/evaluate", params={"format": "jsonl", "llm": "false", "limit": 2}, content=scenarios.read_bytes()
    )
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["summary"]["overall"]["scenarios"] == 2
    assert data["report"].startswith("# advisor eval report")
    broken = client.post("/api/evaluate", params={"format": "yaml"}, content=b"- id: x\n  question: [unclosed\n")
    assert broken.status_code == 400 and broken.json()["exit_code"] == 7
    assert "scenarios.yaml" not in broken.json()["error"]  # the temporary file's path is not shown


# -- documents -------------------------------------------------------------------------


def test_upload_ask_cite_remove(client: Any, web_advisor: Any) -> None:
    note = "# Quuxbridge negotiation note\n\nWhen a quuxbridge recruiter calls, ask for the salary band first.\n"
    up = client.post("/api/documents", params={"name": "quux-note.md"}, content=note.encode())
    assert up.status_code == 200, up.text
    source = up.json()["source"]
    assert Path(source) == web_advisor.settings.home / "uploads" / "quux-note.md"
    assert up.json()["report"]["added"] == 1
    listed = {d["source"]: d for d in client.get("/api/documents").json()}
    assert listed[source]["file"] == "same" and listed[source]["lang"] == "en"
    answer = client.post(
        "/api/ask", json={"question": "What should I ask the quuxbridge recruiter first?", "llm": False}
    )
    assert source in {c["source"] for c in answer.json()["citations"]}, answer.json()
    view = client.get("/api/document", params={"source": source}).json()
    assert view["text"] == note and view["state"] == "same"
    again = client.post("/api/documents", params={"name": "quux-note.md"}, content=note.encode())
    assert again.json()["report"]["unchanged"] == 1  # the same file again: nothing re-embedded
    gone = client.request("DELETE", "/api/documents", params={"source": source})
    assert gone.status_code == 200 and gone.json()["removed"] == 1
    assert source not in {d["source"] for d in client.get("/api/documents").json()}


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", 400, "photo.png is a .png file; only .txt, .md and .rst"),
        ("blob.txt", b"\x00\x01\x02binary" * 10, 400, "blob.txt looks binary, not text; convert it to .txt or .md"),
        ("empty.md", b"  \n\n ", 400, "empty.md is empty"),
        ("big.md", b"a" * (WEB_MAX_UPLOAD + 1), 413, "big.md is larger than 256 KiB; split it first"),
        ("../../etc/evil.md", b"", 400, "evil.md is empty"),
    ],
)
def test_bad_uploads_get_the_clis_messages_and_change_nothing(
    client: Any, web_advisor: Any, name: str, data: bytes, status: int, message: str
) -> None:
    before = client.get("/api/documents").json()
    got = client.post("/api/documents", params={"name": name}, content=data)
    assert got.status_code == status, got.text
    error = got.json()["error"]
    assert message in error and "\n" not in error, error
    assert client.get("/api/documents").json() == before
    uploads = web_advisor.settings.home / "uploads"
    assert not uploads.exists() or not any(p.name.startswith((".", Path(name).name)) for p in uploads.iterdir())


def test_reingest_and_unknown_ids(client: Any) -> None:
    docs = client.get("/api/documents").json()
    again = client.post("/api/documents/reingest", json={"source": docs[0]["source"]})
    assert again.status_code == 200 and again.json()["unchanged"] == 1
    missing = client.post("/api/documents/reingest", json={"source": "no-such-doc"})
    assert missing.status_code == 404 and "no stored document" in missing.json()["error"]


# -- safety ------------------------------------------------------------------------------


def test_a_foreign_host_header_is_refused(client: Any) -> None:
    """DNS rebinding: a page at evil.example whose name now points at 127.0.0.1."""
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example"):
        got = client.get("/api/documents", headers={"Host": host})
        assert got.status_code == 421, host
        assert "Host header" in got.json()["error"]
    for host in ("localhost", "127.0.0.1:1", "[::1]:8765"):
        assert client.get("/api/info", headers={"Host": host}).status_code == 200, host


def test_a_post_from_another_site_is_refused(client: Any) -> None:
    got = client.request(
        "DELETE", "/api/documents", params={"source": "good-word-timing"}, headers={"Origin": "http://evil.example"}
    )
    assert got.status_code == 403
    port = client.base_url.port
    for origin in ("http://localhost:1", f"http://evil.example:{port}", "null"):
        refused = client.post("/api/documents", params={"name": "x.md"}, content=b"x", headers={"Origin": origin})
        assert refused.status_code == 403, origin
    assert "good-word-timing" in {d["source"] for d in client.get("/api/documents").json()}
    same = client.post("/api/retrieve", json={"question": QUESTION}, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert same.status_code == 200


def test_a_public_bind_without_a_token_refuses_to_start(tmp_path: Path, offline_sitecustomize: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=f"{offline_sitecustomize}:{Path(__file__).parent.parent}")
    proc = run_advisor(["serve", "--host", "0.0.0.0", "--port", "0"], tmp_path / "h", env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: refusing to listen on 0.0.0.0")
    assert "--token" in proc.stderr
    assert not (tmp_path / "h").exists()  # nothing loaded, nothing written


def test_check_bind_rules() -> None:
    from advisor.errors import InputError
    from advisor.webguard import check_bind

    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "a-long-token")
    for host, token in [("0.0.0.0", None), ("192.168.1.5", ""), ("::", "  "), ("0.0.0.0", "short")]:
        with pytest.raises(InputError):
            check_bind(host, token)


def test_with_a_token_every_request_needs_it(web_advisor: Any) -> None:
    import httpx

    from advisor.server import running

    token = "t0k3n-for-tests"
    with running(web_advisor, token=token, llm=False) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for path in ("/", "/documents", "/api/documents", "/static/ask.js", "/api/openapi.json"):
            assert c.get(path).status_code == 401, path
        assert c.get("/api/documents", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert c.get("/api/documents", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/", params={"token": "wrong"}).status_code == 401
        login = c.get("/", params={"token": token})
        assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
        assert c.get("/api/documents").status_code == 200  # the cookie now


def test_documents_are_served_by_stored_id_only(client: Any, web_advisor: Any) -> None:
    secret = web_advisor.settings.home / "secret.txt"
    secret.write_text("the secret plans", encoding="utf-8")
    for source in (str(secret), "../secret.txt", "/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd"):
        got = client.get("/api/document", params={"source": source})
        assert got.status_code == 404, source
        assert "secret plans" not in got.text and "root:" not in got.text
    for path, query in (("/", "page=../server.py"), ("/documents", "page=/etc/passwd"), ("/", "name=../server.py")):
        got = client.get(f"{path}?{query}")
        assert got.status_code == 200 and got.text.startswith("<!doctype html>"), path
        assert "import" not in got.text and "root:" not in got.text
    for path in ("/static/../../etc/passwd", "/static/..%2F..%2Fserver.py", "/static/server.py"):
        got = client.get(path)
        assert got.status_code == 404 and "import" not in got.text, path
        assert "error" in got.json(), path
    removing = client.request("DELETE", "/api/documents", params={"source": str(web_advisor.settings.home)})
    assert removing.status_code == 404  # a folder is not an id: nothing under it is removed
    ok = client.get("/api/document", params={"source": "good-word-timing"})
    assert ok.status_code == 200 and ok.json()["state"] == "same"


def test_a_document_with_script_is_returned_as_data(client: Any) -> None:
    up = client.post("/api/documents", params={"name": "zyxwv.md"}, content=EVIL.encode())
    assert up.status_code == 200, up.text
    view = client.get("/api/document", params={"source": up.json()["source"]})
    assert view.headers["content-type"].startswith("application/json")
    assert view.json()["text"] == EVIL  # as data, in JSON; the page renders it as text (tests/test_browser.py)
    client.request("DELETE", "/api/documents", params={"source": up.json()["source"]})


def test_every_response_carries_the_content_security_policy(client: Any) -> None:
    for path in ("/", "/documents", "/static/ask.js", "/api/info", "/api/document?source=nope"):
        csp = client.get(path).headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page  # no asset from the network
    assert "<script>" not in page  # no inline script (the CSP would block it anyway)


@pytest.mark.parametrize(("path", "name"), [("/", "ask"), ("/documents", "documents")])
def test_each_page_is_the_shared_head_around_its_own_body(client: Any, path: str, name: str) -> None:
    from advisor.server import WEB

    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert html.startswith("<!doctype html>\n<html lang=\"en\">") and html.rstrip().endswith("</body>\n</html>")
    assert f"<title>advisor · {name}</title>" in html and f'<script src="/static/{name}.js" defer></script>' in html
    assert (WEB / f"{name}.html").read_text(encoding="utf-8").strip() in html
    assert "{" + "body}" not in html and "{" + "title}" not in html


# -- concurrency -------------------------------------------------------------------------


def test_twenty_concurrent_asks_and_an_upload(client: Any, web_advisor: Any) -> None:
    """20 asks at once (5 streamed) and an upload among them: all answer, as the Python API does.

    The upload changes the store (word scores are normalised over every chunk),
    so each answer must equal the Python API's either before or after it.
    """
    import httpx

    def python_answers() -> dict[str, dict[str, Any]]:
        web_advisor._answers.clear()  # computed afresh, not from the server's cached answers
        return {q: comparable(json.loads(json.dumps(web_advisor.ask(q, llm=False).to_dict()))) for q in QUESTIONS}

    before_docs = {d["source"] for d in client.get("/api/documents").json()}
    before = python_answers()
    web_advisor._answers.clear()
    note = b"# Frobnicator maintenance\n\nThe frobnicator manual says to recalibrate it weekly.\n"
    url = client.base_url

    def one(i: int) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=url, timeout=180) as c:
            if i == 7:
                up = c.post("/api/documents", params={"name": "frobnicator.md"}, content=note)
                return i, {"upload": up.status_code, **up.json()}
            body = {"question": QUESTIONS[i % len(QUESTIONS)], "llm": False}
            if i % 4 == 0:
                events = sse_events(c.post("/api/ask/stream", json=body).text)
                assert events[-1][0] == "answer", events
                return i, events[-1][1]
            got = c.post("/api/ask", json=body)
            assert got.status_code == 200, got.text
            return i, got.json()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=21) as pool:
        results = dict(pool.map(one, range(21)))
    assert time.monotonic() - started < 240
    upload = results.pop(7)
    assert upload["upload"] == 200 and upload["report"]["added"] == 1, upload
    after = python_answers()
    assert len(results) == 20
    for i, answer in results.items():
        q = QUESTIONS[i % len(QUESTIONS)]
        assert comparable(answer) in (before[q], after[q]), i
    docs = [d["source"] for d in client.get("/api/documents").json()]
    assert len(docs) == len(set(docs)), "a document is listed twice"
    assert set(docs) == before_docs | {upload["source"]}, "a document was lost or added twice"
    client.request("DELETE", "/api/documents", params={"source": upload["source"]})


def test_twenty_concurrent_asks_equal_the_python_api(client: Any, web_advisor: Any) -> None:
    """Without an upload in between, every one of 20 concurrent answers is exactly the Python API's."""
    import httpx

    web_advisor._answers.clear()
    url = client.base_url

    def one(i: int) -> dict[str, Any]:
        with httpx.Client(base_url=url, timeout=180) as c:
            got = c.post("/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)], "llm": False})
            assert got.status_code == 200, got.text
            return dict(got.json())

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert time.monotonic() - started < 240
    web_advisor._answers.clear()
    for i, answer in enumerate(answers):
        expected = web_advisor.ask(QUESTIONS[i % len(QUESTIONS)], llm=False).to_dict()
        assert comparable(answer) == comparable(json.loads(json.dumps(expected))), i


# -- the command ------------------------------------------------------------------------


def test_serve_help_and_import_cost() -> None:
    code = "import json, sys, advisor.cli; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"fastapi", "starlette", "uvicorn", "httpx", "selenium", "anyio"}, loaded


def test_a_taken_port_is_one_line() -> None:
    import socket

    from advisor.errors import InputError
    from advisor.server import _listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=rf"cannot listen on 127.0.0.1:{port} .*pick another --port"):
            _listen("127.0.0.1", port)


def test_advisor_serve_starts_answers_and_stops_on_ctrl_c(tmp_path: Path, offline_sitecustomize: Path) -> None:
    """The command as a user runs it: models load, the URL is printed, the page answers, Ctrl-C ends it (exit 0)."""
    import signal

    import httpx
    from conftest import ADVISOR_BIN

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONPATH=f"{offline_sitecustomize}:{Path(__file__).parent.parent}",
        ADVISOR_HOME=str(tmp_path / "home"),
    )
    proc = subprocess.Popen(
        [str(ADVISOR_BIN), "serve", "--no-llm", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import select

        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + 180
        seen = b""
        while not re.search(rb"serving on \S+", seen) and time.monotonic() < deadline and proc.poll() is None:
            if poller.poll(1000):  # bounded: never blocks past the deadline (poll: no FD_SETSIZE limit)
                seen += os.read(fd, 4096)
        found = re.search(rb"serving on (\S+)", seen)
        assert found, seen.decode(errors="replace")
        url = found.group(1).decode()
        assert url.startswith("http://127.0.0.1:"), seen
        with httpx.Client(base_url=url, timeout=120) as c:
            assert c.get("/api/info").json()["llm"] is False
            assert "Your question" in c.get("/").text
            got = c.post("/api/ask", json={"question": QUESTION})
            assert got.status_code == 200 and got.json()["mode"] == "extractive"
            assert c.post("/api/ask", json={"question": QUESTION, "llm": True}).status_code == 400  # --no-llm
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err.rstrip().endswith("advisor: stopped")
    everything = seen.decode(errors="replace") + err + out
    assert "Traceback" not in everything and "NETWORK BLOCKED" not in everything


def test_a_chunked_body_without_length_is_limited_too(client: Any) -> None:
    """Without Content-Length the body is counted as it arrives, and refused past the limit."""
    before = client.get("/api/documents").json()

    def pieces(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536 + 1):
            yield b"a" * 65536

    up = client.post("/api/documents", params={"name": "chunked.md"}, content=pieces(WEB_MAX_UPLOAD))
    assert up.status_code == 413 and up.json()["error"] == "chunked.md is larger than 256 KiB; split it first"
    ask = client.post("/api/ask", content=pieces(WEB_MAX_UPLOAD + 2**20), headers={"content-type": "application/json"})
    assert ask.status_code == 413 and "larger than" in ask.json()["error"]
    assert client.get("/api/documents").json() == before


def test_a_chunked_ask_still_streams(client: Any) -> None:
    body = json.dumps({"question": QUESTION, "llm": False}).encode()
    got = client.post(
        "/api/ask/stream", content=iter([body[:10], body[10:]]), headers={"content-type": "application/json"}
    )
    assert [name for name, _ in sse_events(got.text)] == ["answer"]


def test_requests_reach_the_advisor_one_at_a_time(
    client: Any, web_advisor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent asks and retrievals queue for the one worker: never two advisor calls at once."""
    import threading

    import httpx

    lock = threading.Lock()
    state = {"now": 0, "most": 0, "calls": 0}

    def counted(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                state["now"] += 1
                state["calls"] += 1
                state["most"] = max(state["most"], state["now"])
            try:
                time.sleep(0.05)  # widen the window in which a second call could overlap
                return original(*args, **kwargs)
            finally:
                with lock:
                    state["now"] -= 1

        return call

    monkeypatch.setattr(web_advisor, "ask", counted(web_advisor.ask))
    monkeypatch.setattr(web_advisor, "retrieve", counted(web_advisor.retrieve))
    url = client.base_url

    def one(i: int) -> int:
        with httpx.Client(base_url=url, timeout=120) as c:
            body = {"question": QUESTIONS[i % len(QUESTIONS)]}
            if i % 2:
                return c.post("/api/retrieve", json=body).status_code
            return c.post("/api/ask", json={**body, "llm": False}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(one, range(8)))
    assert codes == [200] * 8
    assert state["calls"] == 8 and state["most"] == 1, state
