"""The ``advisor`` command: parse arguments, call the API, print.

Every user error is one line on stderr (``error: ...``) with the exit code of
its :class:`~advisor.errors.AdvisorError` subclass; see docs/reference.md.
Heavy libraries are not imported here (tests enforce it), so ``--help`` is fast.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import textwrap
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from advisor.errors import AdvisorError, InputError
from advisor.safety import CONTROL_CHARS
from advisor.types import finite

if TYPE_CHECKING:
    from advisor.api import Advisor
    from advisor.evaluation import EvalReport, Scenario
    from advisor.types import Answer, IngestReport

__all__ = ["app", "main"]


app = typer.Typer(
    name="advisor",
    help=(
        "A local, offline career advisor. It answers job-search questions from a corpus of "
        "advice articles and your own documents, citing the exact passages it rests on.\n\n"
        'Start with: advisor ask "My contact knows the hiring manager, when should I ask?" '
        "(the bundled corpus is ingested on first use)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain literal [env: ...] hints
)

F = TypeVar("F", bound=Callable[..., Any])


def _show_version(value: bool) -> None:
    if value:
        from advisor import __version__

        typer.echo(f"advisor {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    pass


HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Data directory for the store [env: ADVISOR_HOME].", show_default=False),
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="use-multilingual | e5-small | use+e5 | minilm | st:<model> [env: ADVISOR_EMBEDDER].",
        show_default=False,
    ),
]
ChromaOpt = Annotated[
    str | None,
    typer.Option(
        "--chroma-url",
        help="Use a Chroma server, e.g. http://127.0.0.1:8000 [env: ADVISOR_CHROMA_URL].",
        show_default=False,
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option("-k", "--k", help="Passages to retrieve (default 5) [env: ADVISOR_K].", show_default=False),
]
NoLlmOpt = Annotated[bool, typer.Option("--no-llm", help="Answer without the language model (extractive).")]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="Path to a GGUF model [env: ADVISOR_MODEL].", show_default=False)
]
LlmUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--llm-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 [env: ADVISOR_LLM_URL].",
        show_default=False,
    ),
]
RerankOpt = Annotated[
    str | None,
    typer.Option(
        "--rerank",
        metavar="MODEL",
        help=(
            "Rerank the top candidates with a cross-encoder: st-cross:<model name or path>, a local "
            "directory, or none (default: off) [env: ADVISOR_RERANKER]."
        ),
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
GlossOpt = Annotated[
    bool | None,
    typer.Option(
        "--gloss/--no-gloss",
        help=(
            "With a model: translate each quote in another language than the question's (one checked "
            "sentence beneath it; default on) [env: ADVISOR_GLOSS]."
        ),
        show_default=False,
    ),
]

# The options that say which advisor a command opens: command parameter -> (Advisor setting, option).
_ADVISOR_OPTIONS: dict[str, tuple[str, Any]] = {
    "model": ("model", ModelOpt),
    "llm_url": ("llm_url", LlmUrlOpt),
    "rerank": ("reranker", RerankOpt),
    "gloss": ("gloss", GlossOpt),
    "home": ("home", HomeOpt),
    "embedder": ("embedder", EmbedderOpt),
    "chroma_url": ("chroma_url", ChromaOpt),
}
MODEL_OPTIONS = ("model", "llm_url", "rerank")
STORE_OPTIONS = ("home", "embedder", "chroma_url")


class Chosen:
    """The advisor a command's options chose; :meth:`open` opens it (settings not given stay as configured)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def open(self, **more: Any) -> Advisor:
        return _advisor(**self.overrides, **more)


def _opens_advisor(*names: str) -> Callable[[F], F]:
    """Give a command the options ``names`` (after its own, before a last ``--json``) as one ``chosen: Chosen``."""

    def decorate(func: F) -> F:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(func).parameters.values()
            if p.name != "chosen"
        ]
        cut = len(own) - 1 if own and own[-1].name == "as_json" else len(own)
        added = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_ADVISOR_OPTIONS[n][1])
            for n in names
        ]
        params = own[:cut] + added + own[cut:]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            chosen = Chosen({_ADVISOR_OPTIONS[n][0]: kwargs.pop(n) for n in names})
            return func(chosen=chosen, **kwargs)

        wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


# Control characters from documents, file names or a model must not reach the
# terminal (safety.CONTROL_CHARS): every text line goes through _echo, which
# shows them as U+FFFD, and _line keeps an untrusted value on its line, so a
# newline in a file name cannot forge an "error:" line. --json output escapes
# them as JSON does.


def _line(text: str) -> str:
    """``text`` for one line of output: newlines and tabs are replaced too."""
    return text.replace("\n", "\ufffd").replace("\t", " ")


def _echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    typer.echo(CONTROL_CHARS.sub("\ufffd", message), err=err, nl=nl)


def _handle_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AdvisorError as exc:
            _echo(f"error: {_line(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _echo("error: interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # e.g. `advisor eval ... | head -1`: stop quietly, like other tools
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(141) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug: still one line unless debugging
            if os.environ.get("ADVISOR_DEBUG"):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            _echo(
                f"error: internal error ({type(exc).__name__}: {first}); rerun with ADVISOR_DEBUG=1 and report it",
                err=True,
            )
            raise typer.Exit(70) from None

    return wrapper  # type: ignore[return-value]


def _advisor(**overrides: Any) -> Advisor:
    from advisor.api import Advisor

    return Advisor(**{k: v for k, v in overrides.items() if v is not None})


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(finite(data), ensure_ascii=False, indent=2, allow_nan=False))


def _progress_bar(label: str) -> tuple[Any, Callable[[int, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        console=None,
    )
    task = bar.add_task(label, total=None, rate="")
    import time

    started = time.perf_counter()

    def update(done: int, total: int, chunks: int) -> None:
        elapsed = max(1e-6, time.perf_counter() - started)
        bar.update(task, completed=done, total=total, rate=f"{chunks} chunks, {chunks / elapsed:.0f}/s")

    return bar, update


def _report_text(report: IngestReport) -> str:
    return (
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed ({report.chunks_added} chunks embedded, "
        f"{report.chunks_removed} deleted) in {report.seconds:.1f} s"
    )


_PATHS_HELP = "Files or folders (.txt, .md, .rst, .pdf, .html, .docx). Default: the bundled corpus."
_TIMEOUT_HELP = "Seconds before generation is cut off (default 120)."


@app.command()
@_handle_errors
@_opens_advisor(*STORE_OPTIONS)
def ingest(
    chosen: Chosen,
    paths: Annotated[list[Path] | None, typer.Argument(help=_PATHS_HELP, show_default=False)] = None,
    reindex: Annotated[
        bool, typer.Option("--reindex", help="Drop the store and embed everything again (after changing the embedder).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read, chunk and embed documents into the store; unchanged files are skipped."""
    adv = chosen.open()
    bar, update = _progress_bar("ingest")
    with bar:
        report = adv.ingest(paths or None, progress=update, reindex=reindex)
    for warning in report.warnings:
        _echo(f"warning: {_line(warning)}", err=True)
    if as_json:
        _print_json(report.to_dict())
    else:
        _echo(_report_text(report))


@app.command()
@_handle_errors
@_opens_advisor(*STORE_OPTIONS)
def sources(
    chosen: Chosen,
    as_json: JsonOpt = False,
) -> None:
    """List the documents in the store: the source id citations use, language, chunks, title, path.

    A document whose file changed or went away since it was ingested is flagged.
    """
    adv = chosen.open()
    docs = adv.documents()
    if as_json:
        _print_json([d.to_dict() for d in docs])
        return
    if not docs:
        _echo(f"no documents in {adv.settings.home}; advisor ingest adds the bundled corpus or your files", err=True)
        return
    width = max(len(d.source) for d in docs)
    for d in docs:
        state = "" if d.complete else "  (incomplete: run advisor ingest again)"
        if d.file == "changed":
            state += "  (the file changed since it was ingested: advisor ingest it)"
        elif d.file == "missing":
            state += "  (the file is gone: advisor ingest its new place, or advisor remove it)"
        _echo(f"{_line(d.source):<{width}}  {_line(d.lang):<2}  {d.chunks:>4} chunks  {_line(d.title)}{state}")
        if d.path != d.source:
            _echo(f"{'':<{width}}  {_line(d.path)}")
    _echo(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks", err=True)


@app.command()
@_handle_errors
@_opens_advisor(*STORE_OPTIONS)
def remove(
    chosen: Chosen,
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Source ids (as advisor sources and citations show them), file paths, or folders.",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Forget documents: their chunks leave the store (the files are not touched).

    All or nothing: if one name matches no stored document, nothing is removed.
    advisor ingest PATH brings a document back.
    """
    adv = chosen.open()
    report = adv.remove(targets)
    if as_json:
        _print_json(report.to_dict())
    else:
        _echo(f"{report.removed} removed ({report.chunks_removed} chunks deleted)")
    if adv.store.count() == 0:
        _echo("warning: the store is now empty; the next question ingests the bundled corpus again", err=True)


# What the model writes streams to the terminal as it is written: said so before it, and what
# became of it after (every sentence is checked before it is shown in the answer below).
DRAFT_HEADER = "model output (not yet checked against the sources):"
DRAFT_DONE = "checked: the answer below shows only what passed"

_MODE = {
    "llm": "written by the local model from the quoted sentences, each checked against them",
    "extractive": "extractive: verbatim sentences from the sources",
    "abstain": "abstained: the documents do not cover this",
}
_LANGUAGE = {"en": "English", "es": "Spanish", "de": "German"}


def _mode_text(answer: Answer) -> str:
    """How the answer was made; a model-written one says when it rests on a machine translation."""
    if answer.mode == "extractive" and any(answer.translations + answer.english):
        return f"{_MODE['extractive']}, each in another language with its checked machine translation beneath it"
    if answer.mode != "llm":
        return _MODE[answer.mode]
    from advisor.citations import marker_numbers  # numpy: not on the start-up path of every command

    cited = sorted(set(marker_numbers(answer.text)))
    via = [n for n in cited if n <= len(answer.translations) and answer.translations[n - 1]]
    if not via:
        return _MODE["llm"]
    marks = ", ".join(f"[{n}]" for n in via)
    return (
        f"written by the local model from the machine translation of {marks} and checked against it; "
        "a machine translation may be inexact: the quote is the source"
    )


def _translation_lines(answer: Answer, i: int) -> list[str]:
    """The labelled translation of quote ``i`` (1-based): into the asker's language, else English, else none."""
    language = _LANGUAGE.get(answer.lang, answer.lang)
    translation = answer.translations[i - 1] if i <= len(answer.translations) else None
    if translation:
        return [f"    {language} machine translation (may be inexact; the quote is the source): “{_line(translation)}”"]
    english = answer.english[i - 1] if i <= len(answer.english) else None
    if english:
        note = f"machine translation (no {language} one passed its checks; may be inexact; the quote is the source)"
        return [f"    English {note}: “{_line(english)}”"]
    return []


def _answer_lines(answer: Answer) -> tuple[list[str], set[int]]:
    """The answer's lines and the quotes it shows itself, each with its translation beneath it.

    An extractive answer is its quotes: each foreign one gets its translation right beneath it,
    so the answer reads in the asker's language without a trip to the sources, and the sources
    then give only where each quote is (nothing is printed twice).
    """
    if answer.mode != "extractive":
        return answer.text.splitlines() or [""], set()
    lines: list[str] = []
    shown: set[int] = set()
    for line in answer.text.splitlines() or [""]:
        lines.append(line)
        for i, quote in enumerate(answer.quotes, start=1):
            if line.endswith(f"“{quote.text}” [{i}]"):
                lines += _translation_lines(answer, i)
                shown.add(i)
    return lines, shown


def _render_answer(answer: Answer, explain: bool) -> str:
    lines, shown = _answer_lines(answer)
    lines.append("")
    total = answer.timings.get("total_ms", 0.0) / 1000
    lines.append(f"mode: {_mode_text(answer)} · {total:.1f} s")
    lines.extend(f"note: {note}" for note in answer.notes)
    if answer.citations:
        lines += ["", "Sources:"]
    for i, p in enumerate(answer.citations, start=1):
        flag = " [flagged: contains text addressed to an AI]" if p.flagged else ""
        lines.append(f"[{i}] {_line(p.title)} ({_line(p.lang)}){flag}")
        if i <= len(answer.quotes) and i not in shown:
            lines.append(f"    “{_line(answer.quotes[i - 1].text)}”")
            lines += _translation_lines(answer, i)
        where = answer.quotes[i - 1] if i <= len(answer.quotes) else p
        page = f", page {p.page}" if p.page else ""
        of = f" of its text {_line(p.text_path)}" if p.text_path else ""
        lines.append(f"    {_line(p.path)}{page}, characters {where.start}-{where.end}{of}")
        if explain:
            lines.append(textwrap.fill(p.text, width=88, initial_indent="    > ", subsequent_indent="    > "))
    if explain:
        lines += ["", "Retrieved (score; signals: dense cosine, word match, BM25, reranker, and their ranks):"]
        for p in answer.retrieved:
            sig = " ".join(f"{k}={v}" for k, v in p.signals.items())
            lines.append(f"  {p.score:.3f}  {p.source} #{p.chunk}  {sig}")
    return "\n".join(lines)


def _prepare_model(adv: Advisor) -> None:
    """Load the model before the first question; the default one is assembled on first use, with a bar."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("assembling the default model (once)"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("model", total=None)
        adv.prepare_model(lambda done, total: bar.update(task, completed=done, total=total))


@app.command()
@_handle_errors
@_opens_advisor(*MODEL_OPTIONS, "gloss", *STORE_OPTIONS)
def ask(
    chosen: Chosen,
    question: Annotated[str, typer.Argument(help="Your question, in English, Spanish or German.")],
    k: KOpt = None,
    no_llm: NoLlmOpt = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help=_TIMEOUT_HELP, show_default=False)] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also show each cited passage whole and every retrieved candidate.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with the sentences it rests on, translated where they are in another language.

    With the model (the default), the answer is one sentence the local model writes in your
    language, shown only if it passes every check against the quoted sentences it cites;
    otherwise the quoted sentences themselves (extractive). Each quote is verbatim, with its
    document, offsets and a checked machine translation when it is in another language.
    """
    adv = chosen.open()
    stream = not as_json and sys.stderr.isatty() and not no_llm
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        if not streamed:
            _echo(DRAFT_HEADER, err=True)
        streamed.append(piece)
        _echo(piece, nl=False, err=True)

    adv.check_question(question, k, timeout)  # a bad question, -k or --timeout fails before anything loads
    if not no_llm:
        _prepare_model(adv)
    answer = adv.ask(question, k=k, llm=not no_llm, on_token=on_token if stream else None, timeout=timeout)
    if streamed:
        _echo("\n" + "-" * 40 + "\n" + DRAFT_DONE, err=True)
    if as_json:
        _print_json(answer.to_dict())
    else:
        _echo(_render_answer(answer, explain))


@app.command()
@_handle_errors
@_opens_advisor(*MODEL_OPTIONS, "gloss", *STORE_OPTIONS)
def chat(
    chosen: Chosen,
    k: KOpt = None,
    no_llm: NoLlmOpt = False,
) -> None:
    """Ask questions one after another; models stay loaded and follow-ups use the conversation."""
    adv = chosen.open()
    adv.check_question("?", k)  # a bad -k fails before anything loads
    if not no_llm:
        _prepare_model(adv)
    history: list[str] = []
    _echo("advisor chat: ask a question (an empty line or Ctrl-D ends the session)", err=True)
    while True:
        _echo("you> ", err=True, nl=False)  # the prompt goes to stderr: stdout holds only answers
        try:
            line = input()
        except EOFError:
            break
        except KeyboardInterrupt:
            _echo("", err=True)  # off the prompt line before the one-line error
            raise
        if not line.strip():
            break
        try:
            answer = adv.ask(line, k=k, llm=not no_llm, history=history)
        except AdvisorError as exc:  # one bad question does not end the session
            _echo(f"error: {_line(str(exc))}", err=True)
            continue
        _echo(_render_answer(answer, explain=False) + "\n")
        history.append(line)


def _scenarios_to_run(scenarios: Path, tags: list[str] | None, limit: int | None) -> list[Scenario]:
    """The scenarios of the file that ``--filter`` and ``--limit`` keep; none is an InputError."""
    from advisor.evaluation import load_scenarios

    items = load_scenarios(scenarios)
    if tags:
        items = [s for s in items if set(tags) & set(s.tags)]
    if limit is not None:
        items = items[: max(0, limit)]
    if not items:
        raise InputError("no scenarios to run (check --filter and --limit)")
    return items


def _print_eval(report: EvalReport, old: dict[str, Any] | None, failures: list[str], out: Path, as_json: bool) -> None:
    """The run's summary (and its comparison with the baseline ``old``): JSON, or lines for a person."""
    from advisor.evaluation import compare, deltas

    if as_json:
        data: dict[str, Any] = {"summary": report.summary, "floors_failed": failures}
        if old is not None:
            data["baseline"] = deltas(report.summary, old)
        _print_json(data)
    else:
        _echo(report.console_summary())
        if old is not None:
            _echo(compare(report.summary, old))
        _echo(f"wrote {out}/results.jsonl, summary.json, report.md, junit.xml")


_FLOORS_HELP = "METRIC=VALUE floor, e.g. --min evidence_hit@5=0.9 (repeatable); exit 1 when below."
_TOKEN_HELP = "Require this token (Bearer header, or open /?token=... once) [env: ADVISOR_TOKEN]."
_HOSTS_HELP = "Another Host name to accept (repeatable), e.g. for --host 0.0.0.0."


@app.command(name="eval")
@_handle_errors
@_opens_advisor(*MODEL_OPTIONS, *STORE_OPTIONS)
def evaluate(
    chosen: Chosen,
    scenarios: Annotated[Path, typer.Argument(help="Scenario file (.yaml or .jsonl); format in docs/reference.md.")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for results.jsonl, summary.json, report.md, junit.xml.")
    ] = Path("eval-out"),
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Skip answering: retrieval metrics only (fast).")
    ] = False,
    no_llm: NoLlmOpt = False,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Run only the first N scenarios.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Only scenarios with this tag (repeatable).", show_default=False),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="An earlier summary.json to compare against.", show_default=False)
    ] = None,
    floors: Annotated[list[str] | None, typer.Option("--min", help=_FLOORS_HELP, show_default=False)] = None,
    k: KOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Scenarios in parallel (needs --llm-url).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario file through one loaded advisor and write metrics and reports."""
    from advisor.evaluation import check_floors, load_baseline, parse_floors, write_reports

    parsed_floors = parse_floors(floors or [])
    old = load_baseline(baseline) if baseline else None  # a bad baseline fails before the run, not after
    items = _scenarios_to_run(scenarios, tag, limit)
    adv = chosen.open(k=k)
    if not no_llm and not retrieval_only and concurrency == 1:  # (other values are checked by evaluate)
        _prepare_model(adv)
    bar, update = _progress_bar("eval")
    with bar:
        report = adv.evaluate(
            items,
            retrieval_only=retrieval_only,
            llm=not no_llm,
            progress=lambda done, total: update(done, total, 0),
            concurrency=concurrency,
        )
    write_reports(report, out)
    failures = check_floors(report.summary, parsed_floors)
    _print_eval(report, old, failures, out, as_json)
    for failure in failures:
        _echo(f"error: {failure}", err=True)
    if failures:
        raise typer.Exit(1)


@app.command()
@_handle_errors
@_opens_advisor(*MODEL_OPTIONS, "gloss", *STORE_OPTIONS)
def serve(
    chosen: Chosen,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).", min=0, max=65535)] = 8765,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="ADVISOR_TOKEN", help=_TOKEN_HELP, show_default=False, show_envvar=False),
    ] = None,
    allow_host: Annotated[list[str] | None, typer.Option("--allow-host", help=_HOSTS_HELP, show_default=False)] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest document upload, in MiB.", min=0.001, max=64)
    ] = 10.0,
    no_llm: NoLlmOpt = False,
) -> None:
    """Serve the ask page, the documents page and an HTTP JSON API (see docs/reference.md) on this machine."""
    try:
        from advisor.server import serve as run_server
    except ImportError as exc:
        raise InputError(f"advisor serve needs fastapi and uvicorn ({exc}); pip install fastapi uvicorn") from None
    from advisor.webguard import check_bind

    check_bind(host, token)  # before any model loads
    adv = chosen.open()
    _echo("loading models…", err=True)
    run_server(
        adv,
        host,
        port,
        llm=not no_llm,
        token=token,
        allow_hosts=tuple(allow_host or ()),
        max_upload=int(max_upload_mb * 2**20),
        announce=lambda url: _echo(f"advisor: serving on {url} (Ctrl-C stops)", err=True),
    )
    _echo("advisor: stopped", err=True)


@app.command(name="settings")
@_handle_errors
def show_settings(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show every setting in effect, where its value came from (argument, env, file, default) and its env variable."""
    from advisor.settings import describe_settings, load_settings

    rows = describe_settings(load_settings(home=home), home=home)
    if as_json:
        _print_json(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        value = "" if r["value"] is None else r["value"]
        _echo(f"{r['name']:<{width}}  {json.dumps(value, ensure_ascii=False):<28}  {r['source']}")
    _echo("each setting is ADVISOR_<NAME> in the environment or <name> = ... in advisor.toml", err=True)


models_app = typer.Typer(
    help="Language models: what is configured and installed.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(models_app, name="models")


@models_app.command("list")
@_handle_errors
def models_list(as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Show the configured model, the bundled one, and the recommended ones in models/."""
    from advisor.models import list_models
    from advisor.settings import load_settings

    rows = list_models(load_settings(home=home))
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        state = "installed" if row["installed"] else "not installed"
        mark = "*" if row.get("active") else " "
        _echo(f"{mark} {row['name']:<28} {state:<14} {row.get('size', '')}  {row.get('path') or row.get('repo', '')}")


@models_app.command("pull")
@_handle_errors
def models_pull(
    name: Annotated[str, typer.Argument(help="A recommended model (see advisor models list), e.g. qwen2.5-1.5b.")],
    home: HomeOpt = None,
) -> None:
    """Download a recommended model into $ADVISOR_HOME/models and verify its sha256."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from advisor.models import pull_model
    from advisor.settings import load_settings

    columns = (TextColumn(name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(name, total=None)
        path = pull_model(
            name,
            load_settings(home=home),
            progress=lambda done, total: bar.update(task, completed=done, total=total or None),
        )
    _echo(str(path))
    _echo(f"use it with: advisor ask --model {path}  (or set ADVISOR_MODEL)", err=True)


def main() -> None:
    """Entry point of the ``advisor`` script.

    Click's own usage errors (a missing argument, an unknown option, ``-k abc``)
    are printed like every other error: one ``error:`` line naming the --help
    to read, exit code 2.
    """
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        _echo("error: interrupted", err=True)
        code = 130
    except Exception as exc:
        # Click's exceptions, matched by name: typer >= 0.20 vendors its own copy of click
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "ClickException" not in kinds:
            raise
        if "NoArgsIsHelpError" in kinds:
            exc.show()  # type: ignore[attr-defined]  # `advisor` alone: the help text
        elif "UsageError" in kinds:
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "advisor"
            message = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
            _echo(f"error: {_line(message[:1].lower() + message[1:])}; see {where} --help", err=True)
        else:
            _echo(f"error: {_line(exc.format_message())}", err=True)  # type: ignore[attr-defined]
        code = exc.exit_code  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
