"""The package's shape: modules depend on each other one way (no import cycle, nothing below the API imports
it), and no function is longer than a reader can hold in their head."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "advisor"
TOP = {"api", "cli", "server", "uploads", "webguard", "webschema", "__main__", "__init__"}  # facades and web layer


def imports() -> dict[str, set[str]]:
    """For each module of ``advisor``, the ``advisor`` modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("advisor."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("advisor."))
        graph[path.stem] = found - {path.stem}
    return graph


def test_no_module_below_the_facades_imports_them() -> None:
    graph = imports()
    offenders = {m: sorted(deps & TOP) for m, deps in graph.items() if m not in TOP and deps & TOP}
    assert offenders == {}


def test_there_is_no_import_cycle() -> None:
    graph = {m: deps for m, deps in imports().items() if m not in {"__init__", "__main__"}}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


MAX_FUNCTION_LINES = 80  # from its ``def`` (or first decorator) to its last line, docstring and comments included


def test_no_function_is_longer_than_80_lines() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - start + 1
                if lines > MAX_FUNCTION_LINES:
                    where = path.relative_to(PACKAGE.parent)
                    long.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    assert long == [], f"split these into named steps (at most {MAX_FUNCTION_LINES} lines each): {long}"
