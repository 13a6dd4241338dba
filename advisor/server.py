"""``advisor serve``: the ask page, the documents page and an HTTP JSON API over one Advisor.

One :class:`~advisor.api.Advisor` serves every request, so models load once.
Its calls run on one worker thread, one at a time, in arrival order (a 2-core
laptop answers one question at a time; the others wait in the queue); ingest
and remove also take the store's write lock, as the CLI does. The JSON of an
answer is :meth:`Answer.to_dict`, as printed by ``advisor ask --json``.

Imported only by ``advisor serve`` (and tests): the web stack is not loaded
for the other commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from advisor import __version__
from advisor.errors import (
    AdvisorError,
    DocumentError,
    GenerationError,
    InputError,
    ModelError,
    ScenarioError,
    StoreError,
    StoreLockedError,
)
from advisor.types import finite
from advisor.uploads import DEFAULT_MAX_UPLOAD, UploadTooLarge, add_upload, document_view, too_large
from advisor.webguard import Guard, check_bind
from advisor.webschema import ERRORS, AnswerOut, AskRequest, RetrieveRequest, SourceRequest

if TYPE_CHECKING:
    from advisor.api import Advisor

__all__ = ["Running", "create_app", "serve", "start_in_thread"]

WEB = Path(__file__).resolve().parent / "web"
STATIC = {
    "app.css": "text/css",
    "common.js": "text/javascript",
    "ask.js": "text/javascript",
    "documents.js": "text/javascript",
}
PAGES = {"/": "ask.html", "/documents": "documents.html"}
T = TypeVar("T")


def _status(exc: AdvisorError) -> int:
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, StoreLockedError):
        return 409
    if isinstance(exc, InputError | ScenarioError | DocumentError):
        return 404 if "no stored document" in str(exc) else 400
    if isinstance(exc, GenerationError):
        return 502
    if isinstance(exc, ModelError | StoreError):
        return 503
    return 500


def _error(exc: AdvisorError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "exit_code": exc.exit_code}, status_code=_status(exc))


# -- the worker: Advisor calls one at a time -----------------------------------------


class Worker:
    """Runs Advisor calls on one thread, in order: the models serve one request at a time."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advisor-worker")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _sse(event: str, data: Any) -> bytes:
    payload = json.dumps(finite(data), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


async def _read_body(request: Request, limit: int, name: str) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(name, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(name, limit)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class _Context:
    """What the route handlers share: the one Advisor, its worker, and the server's options."""

    advisor: Advisor
    worker: Worker
    llm: bool
    max_upload: int

    def use_llm(self, requested: bool | None) -> bool:
        if requested and not self.llm:
            raise InputError(
                "this server was started with --no-llm; ask with llm false, or restart it without --no-llm"
            )
        return self.llm if requested is None else requested


def create_app(
    advisor: Advisor,
    *,
    llm: bool = True,
    token: str | None = None,
    host: str = "127.0.0.1",
    allow_hosts: tuple[str, ...] = (),
    max_upload: int = DEFAULT_MAX_UPLOAD,
) -> Guard:
    """The web app over ``advisor`` (an ASGI app: FastAPI behind :class:`~advisor.webguard.Guard`)."""
    ctx = _Context(advisor, Worker(), llm, max_upload)
    api = FastAPI(
        title="advisor",
        version=__version__,
        description="A local, offline career advisor: answers cite exact passages of your documents.",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is at /api/openapi.json
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    api.state.worker = ctx.worker
    _add_error_handlers(api)
    _add_pages(api)
    _add_answer_routes(api, ctx)
    _add_document_routes(api, ctx)
    _add_evaluate_route(api, ctx)
    return Guard(api, bound_host=host, token=token, allow_hosts=allow_hosts, max_body=max_upload + 2**20)


def _add_error_handlers(api: FastAPI) -> None:
    """Every error answers as JSON: ``{"error": one line, "exit_code": as the CLI's}``."""

    @api.exception_handler(AdvisorError)
    async def advisor_error(request: Request, exc: AdvisorError) -> JSONResponse:
        return _error(exc)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            msg = f"no such page or endpoint: {request.url.path}; the API is listed at /api/openapi.json"
        else:
            msg = f"{exc.detail} ({request.method} {request.url.path}); the API is listed at /api/openapi.json"
        return JSONResponse({"error": msg}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        msg = f"invalid {where}: {first.get('msg', 'invalid value')}"
        return JSONResponse({"error": msg, "exit_code": 2}, status_code=400)

    @api.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        first = str(exc).splitlines()[0] if str(exc) else ""
        msg = f"internal error ({type(exc).__name__}: {first}); rerun with ADVISOR_DEBUG=1 and report it"
        return JSONResponse({"error": msg, "exit_code": 70}, status_code=500)


def page_html(page: str) -> str:
    """A whole page: the shared head (``page.html``) around the page's own body (``ask.html`` ...)."""
    shell = (WEB / "page.html").read_text(encoding="utf-8")
    body = (WEB / page).read_text(encoding="utf-8").rstrip("\n")
    name = page.removesuffix(".html")
    return shell.replace("{title}", name).replace("{script}", f"{name}.js").replace("{body}", body)


def _page_handler(page: str) -> Callable[[], Awaitable[HTMLResponse]]:
    html = page_html(page)  # composed once, when the app is made

    async def handler() -> HTMLResponse:  # no parameters: nothing from the request chooses the page
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    return handler


def _add_pages(api: FastAPI) -> None:
    """The pages and their assets: a fixed list of files, nothing else on disk."""
    for route, page in PAGES.items():
        api.add_api_route(route, _page_handler(page), methods=["GET"], include_in_schema=False)

    @api.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: nothing else on disk is reachable
            return JSONResponse({"error": f"no such file: {name}"}, status_code=404)
        return FileResponse(WEB / name, media_type=f"{STATIC[name]}; charset=utf-8")


async def _answer_events(job: asyncio.Future[Any], queue: asyncio.Queue[str]) -> AsyncIterator[bytes]:
    """Server-sent events: the model's pieces as they come, then the answer (or the error)."""
    yield b": queued\n\n"
    while not job.done():
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield _sse("token", {"text": getter.result()})
        else:
            getter.cancel()
    while not queue.empty():
        yield _sse("token", {"text": queue.get_nowait()})
    try:
        answer = job.result()
    except AdvisorError as exc:
        yield _sse("error", {"error": str(exc), "exit_code": exc.exit_code})
        return
    except Exception as exc:
        yield _sse("error", {"error": f"internal error ({type(exc).__name__}: {exc})", "exit_code": 70})
        return
    yield _sse("answer", answer.to_dict())


def _add_answer_routes(api: FastAPI, ctx: _Context) -> None:
    """/api/info, /api/ask (whole or streamed) and /api/retrieve."""
    advisor, worker = ctx.advisor, ctx.worker

    @api.get("/api/info", summary="Version and whether model-written answers are on")
    async def info() -> dict[str, Any]:
        return {"version": __version__, "llm": ctx.llm, "max_upload": ctx.max_upload}

    @api.post(
        "/api/ask",
        summary="Answer a question (the JSON of advisor ask --json)",
        responses={200: {"model": AnswerOut}, **ERRORS},
    )
    async def ask(body: AskRequest) -> JSONResponse:
        answer = await worker.run(
            advisor.ask, body.question, body.k, ctx.use_llm(body.llm), history=body.history, timeout=body.timeout
        )
        return JSONResponse(finite(answer.to_dict()))

    @api.post(
        "/api/ask/stream",
        summary="Answer a question as server-sent events",
        description=(
            'Events: `token` ({"text": piece}) for each piece the model writes (its unchecked draft; none in '
            'extractive mode), then one `answer` (the JSON of /api/ask) or one `error` ({"error", "exit_code"}).'
        ),
        responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
        response_class=StreamingResponse,
    )
    async def ask_stream(body: AskRequest) -> StreamingResponse:
        use = ctx.use_llm(body.llm)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def on_token(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        job = asyncio.ensure_future(
            worker.run(
                advisor.ask,
                body.question,
                body.k,
                use,
                history=body.history,
                timeout=body.timeout,
                on_token=on_token if use else None,
            )
        )
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(_answer_events(job, queue), media_type="text/event-stream", headers=headers)

    @api.post("/api/retrieve", summary="The top-k passages for a question, best first", responses=ERRORS)
    async def retrieve(body: RetrieveRequest) -> JSONResponse:
        passages = await worker.run(advisor.retrieve, body.question, body.k)
        return JSONResponse(finite({"passages": [p.to_dict() for p in passages]}))


def _add_document_routes(api: FastAPI, ctx: _Context) -> None:
    """/api/documents (list, add, remove), /api/document (one's text) and /api/documents/reingest."""
    advisor, worker = ctx.advisor, ctx.worker

    @api.get("/api/documents", summary="What the store holds (as advisor sources --json)", responses=ERRORS)
    async def documents() -> JSONResponse:
        docs = await worker.run(advisor.documents)
        return JSONResponse([d.to_dict() for d in docs])

    @api.post(
        "/api/documents",
        summary="Add a .txt, .md or .rst file: the body is the file, ?name= its name",
        openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {}}}},
        responses=ERRORS,
    )
    async def add_document(
        request: Request, name: str = Query(..., description="file name, e.g. note.md")
    ) -> JSONResponse:
        data = await _read_body(request, ctx.max_upload, name.replace("/", "_")[-160:])
        result = await worker.run(add_upload, advisor, name, data, ctx.max_upload)
        return JSONResponse(result.to_dict())

    @api.get("/api/document", summary="A stored document's text, by its source id", responses=ERRORS)
    async def document(source: str = Query(..., description="a source id from /api/documents")) -> JSONResponse:
        return JSONResponse(await worker.run(document_view, advisor, source))

    @api.post("/api/documents/reingest", summary="Read a stored document's file again", responses=ERRORS)
    async def reingest(body: SourceRequest) -> JSONResponse:
        def again() -> dict[str, Any]:
            doc = next((d for d in advisor.documents() if d.source == body.source), None)
            if doc is None:
                raise DocumentError(f"no stored document has the id {body.source!r}; /api/documents lists them")
            if doc.file == "missing":
                raise DocumentError(f"{doc.path} is gone; remove {doc.source} or add the file again")
            return advisor.ingest([doc.path]).to_dict()

        return JSONResponse(await worker.run(again))

    @api.delete("/api/documents", summary="Forget a document (its file is not touched)", responses=ERRORS)
    async def remove(source: str = Query(..., description="a source id from /api/documents")) -> JSONResponse:
        def forget() -> dict[str, Any]:
            if source not in {d.source for d in advisor.documents()}:  # ids only, never a path or folder
                raise DocumentError(f"no stored document has the id {source!r}; /api/documents lists them")
            return advisor.remove([source]).to_dict()

        return JSONResponse(await worker.run(forget))


def _add_evaluate_route(api: FastAPI, ctx: _Context) -> None:
    """/api/evaluate: a scenario file in the body, its summary and Markdown report out."""

    @api.post(
        "/api/evaluate",
        summary="Run a scenario file (the body, YAML or JSON Lines): summary and Markdown report",
        openapi_extra={"requestBody": {"required": True, "content": {"application/yaml": {}, "application/jsonl": {}}}},
        responses=ERRORS,
    )
    async def evaluate(
        request: Request,
        format: str = Query("yaml", pattern="^(yaml|jsonl)$", description="yaml or jsonl"),
        llm_answers: bool | None = Query(None, alias="llm", description="false: extractive answers"),
        retrieval_only: bool = False,
        limit: int | None = Query(None, ge=1),
    ) -> JSONResponse:
        data = await _read_body(request, ctx.max_upload, "the scenario file")
        use = ctx.use_llm(llm_answers)

        def run() -> dict[str, Any]:
            from advisor.evaluation import load_scenarios, render_markdown

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"scenarios.{format}"
                path.write_bytes(data)
                try:
                    items = load_scenarios(path)
                except ScenarioError as exc:
                    raise ScenarioError(str(exc).replace(str(path), "the scenario file")) from None
            if limit is not None:
                items = items[:limit]
            if not items:
                raise InputError("the scenario file holds no scenarios")
            report = ctx.advisor.evaluate(items, retrieval_only=retrieval_only, llm=use)
            return {"summary": report.summary, "report": render_markdown(report)}

        return JSONResponse(finite(await ctx.worker.run(run)))


# -- running it -------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line InputError (port taken, unknown host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"cannot listen on {host}: unknown address ({exc}); use e.g. --host 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise InputError(
            f"cannot listen on {host}:{port} ({reason}); pick another --port or stop the other server"
        ) from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _server(app: Guard) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def _warm_up(advisor: Advisor, llm: bool) -> None:
    """Load the embedder, the store (ingesting the default corpus into an empty one) and the model."""
    advisor.search("warm up")
    if llm:
        _ = advisor.generator


@dataclass
class Running:
    """A server running on a thread (tests, benchmarks): ``url``, then ``stop()``."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(advisor: Advisor, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Running:
    """Serve ``advisor`` from a background thread until ``stop()`` (port 0: any free port)."""
    check_bind(host, options.get("token"))
    sock = _listen(host, port)
    server = _server(create_app(advisor, host=host, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="advisor-serve")
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    return Running(_url(sock), server, thread)


def serve(
    advisor: Advisor,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    llm: bool = True,
    token: str | None = None,
    allow_hosts: tuple[str, ...] = (),
    max_upload: int = DEFAULT_MAX_UPLOAD,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until Ctrl-C (or SIGTERM). Errors before serving (bind, token, models) are one-line AdvisorErrors."""
    check_bind(host, token)
    sock = _listen(host, port)
    with contextlib.closing(sock):
        _warm_up(advisor, llm)
        server = _server(
            create_app(advisor, llm=llm, token=token, host=host, allow_hosts=allow_hosts, max_upload=max_upload)
        )
        announce(_url(sock))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then raises it again
            if not server.started:
                raise
    # a stop by Ctrl-C once serving is the normal end (exit 0); during start-up it is exit 130


@contextlib.contextmanager
def running(advisor: Advisor, **options: Any) -> Iterator[Running]:
    """``with running(adv, llm=False) as srv: ... srv.url ...``: a thread server, stopped at the end."""
    srv = start_in_thread(advisor, **options)
    try:
        yield srv
    finally:
        srv.stop()
