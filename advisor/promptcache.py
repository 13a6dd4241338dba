"""Evaluated prompt starts kept on disk, so a new process does not evaluate them again.

Every request of one kind (translate into English, check a claim, write the answer) starts
with the same system prompt and worked examples: a few hundred tokens that a local model
evaluates before it reads the request's own text. A process that stays up (``chat``,
``serve``, ``eval``, the Python API) evaluates each start once; a new ``advisor ask`` used
to evaluate them all again, several seconds on a laptop's CPU. Here the llama.cpp context's
memory after a start is saved to ``<home>/prompt-states/`` the first time and loaded by later
processes instead of evaluating it again.

Loaded or evaluated, the context then holds the same values, so answers do not change
(``tests/test_promptcache.py``). A saved state is used only by the same model file, the same
llama-cpp-python build and the same context settings (all part of its name), and only when
its size and SHA-256 match what was recorded when it was written. A truncated or altered
file is deleted and the start is evaluated as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.models import file_sha256

__all__ = ["KEEP", "PromptStates"]

KEEP = 24  # saved starts kept (a few kinds of request x languages; older prompts' states are pruned)


class PromptStates:
    """Saved llama.cpp memory of evaluated prompt starts, in ``directory``, for one model and build.

    ``identity``: what must be equal for a saved state to be valid (the model file, the
    llama-cpp-python build, the context size and threads); it is hashed into each file's name.
    """

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity

    def _paths(self, tokens: Sequence[int]) -> tuple[Path, Path]:
        key = hashlib.sha256(f"{self.identity}\n{','.join(map(str, tokens))}".encode()).hexdigest()[:32]
        return self.directory / f"{key}.state", self.directory / f"{key}.json"

    def restore(self, llm: Any, tokens: Sequence[int]) -> bool:
        """Load the saved memory of ``tokens`` into ``llm``'s context; False if none is saved or it is damaged.

        On False the caller evaluates ``tokens`` from the start of the context, as without a saved state.
        """
        if not tokens:
            return False
        data, manifest = self._paths(tokens)
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
            if data.stat().st_size != meta["size"] or file_sha256(data) != meta["sha256"]:
                raise ValueError("the saved state does not match its record")
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError):
            self._drop(data, manifest)
            return False
        import llama_cpp

        llm._ctx.kv_cache_clear()
        found = (llama_cpp.llama_token * (len(tokens) + 1))()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            llm._ctx.ctx, str(data).encode(), 0, found, len(found), ctypes.byref(count)
        )
        if not read or count.value != len(tokens) or list(found[: count.value]) != list(tokens):
            llm._ctx.kv_cache_clear()
            self._drop(data, manifest)
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        with contextlib.suppress(OSError):  # recently used: pruned last
            os.utime(manifest)
        return True

    def save(self, llm: Any, tokens: Sequence[int]) -> None:
        """Save ``llm``'s memory of ``tokens`` (just evaluated, alone); failures only cost the saving."""
        if not tokens:
            return
        import llama_cpp

        data, manifest = self._paths(tokens)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            os.close(fd)
            try:
                ids = (llama_cpp.llama_token * len(tokens))(*tokens)
                if not llama_cpp.llama_state_seq_save_file(llm._ctx.ctx, tmp.encode(), 0, ids, len(tokens)):
                    return
                record = {"size": Path(tmp).stat().st_size, "sha256": file_sha256(Path(tmp)), "tokens": len(tokens)}
                os.replace(tmp, data)
            finally:
                Path(tmp).unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(record, fh)
                os.replace(tmp, manifest)
            finally:
                Path(tmp).unlink(missing_ok=True)
            self._prune()
        except OSError:
            return

    def _prune(self) -> None:
        records = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for manifest in records[KEEP:]:
            self._drop(manifest.with_suffix(".state"), manifest)
        stale = time.time() - 3600  # a process that died while saving left its temporary file
        self._drop(*(tmp for tmp in self.directory.glob("*.tmp") if tmp.stat().st_mtime < stale))

    @staticmethod
    def _drop(*paths: Path) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
