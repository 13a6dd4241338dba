"""Every AdvisorError is a one-line message with its own exit code."""

from __future__ import annotations

import pytest

import advisor.errors as errors_module
from advisor.errors import AdvisorError


def all_error_classes() -> list[type[AdvisorError]]:
    found: list[type[AdvisorError]] = []
    todo: list[type[AdvisorError]] = [AdvisorError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_exported_error_is_an_advisor_error() -> None:
    exported = {getattr(errors_module, name) for name in errors_module.__all__}
    assert exported <= set(all_error_classes())
    assert len(exported) >= 10


@pytest.mark.parametrize("cls", sorted(all_error_classes(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "message",
    ["bad thing\nhappened\r\nhere", "  leading and\ttrailing  \n", "line one\n\nline two\u2028line three"],
)
def test_messages_are_one_line(cls: type[AdvisorError], message: str) -> None:
    err = cls(message)
    text = str(err)
    assert text.splitlines() == [text]
    assert text == text.strip()
    assert text.split() == message.split()  # only whitespace was folded, no words lost


def test_exit_codes_distinguish_the_user_facing_families() -> None:
    codes = {
        name: getattr(errors_module, name).exit_code
        for name in ("InputError", "DocumentError", "ModelError", "StoreError", "ConfigError", "GenerationError")
    }
    assert len(set(codes.values())) == len(codes)
    assert all(code not in (0, 1) for code in codes.values())
    assert errors_module.StoreLockedError.exit_code == errors_module.StoreError.exit_code
    assert errors_module.EmbedderMismatchError.exit_code == errors_module.StoreError.exit_code


def test_json_output_is_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from advisor.cli import _print_json

    _print_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": "ok"})

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    assert json.loads(capsys.readouterr().out, parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": "ok"}
