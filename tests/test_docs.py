"""docs/cli.md holds every command's --help, exactly as scripts/cli_docs.py generates it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from advisor.cli import app, models_app

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs" / "cli.md"


def _cli_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("advisor_script_cli_docs", ROOT / "scripts" / "cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cli_docs = _cli_docs()


def _docs() -> str:
    return DOCS.read_text(encoding="utf-8")


def test_every_command_and_subcommand_has_a_section() -> None:
    texts = cli_docs.help_texts(cli_docs.root_command())
    assert {"advisor", "advisor ask", "advisor models", "advisor models list"} <= set(texts)
    documented = cli_docs.documented(_docs())
    missing = [path for path in texts if path not in documented]
    assert not missing, f"not in docs/cli.md: {', '.join(missing)}; run python scripts/cli_docs.py"


def test_docs_cli_md_is_current() -> None:
    problem = cli_docs.stale_report(cli_docs.help_texts(cli_docs.root_command()), _docs())
    assert problem is None, problem


def test_the_generated_text_is_what_each_command_prints_on_a_wide_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # generating on a narrow terminal, with colour asked for, changes nothing
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    texts = cli_docs.help_texts(cli_docs.root_command())
    assert max(len(line) for text in texts.values() for line in text.splitlines()) <= cli_docs.WIDTH
    monkeypatch.setenv("COLUMNS", "200")  # what `advisor ... --help` prints on a wide terminal
    for path, text in texts.items():
        # not CliRunner: it forces click's width to 80 columns, which no terminal gets
        with pytest.raises(SystemExit) as exit_:
            app([*path.split()[1:], "--help"], prog_name="advisor")
        assert exit_.value.code == 0
        printed = "\n".join(line.rstrip() for line in capsys.readouterr().out.splitlines()).strip("\n")
        assert printed == text, path


def test_a_changed_help_makes_the_check_fail_naming_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    ask = next(info for info in app.registered_commands if info.callback and info.callback.__name__ == "ask")
    monkeypatch.setattr(ask, "help", "A help text nobody has generated docs for.")
    problem = cli_docs.stale_report(cli_docs.help_texts(cli_docs.root_command()), _docs())
    assert problem is not None
    assert problem.startswith("docs/cli.md is stale; run python scripts/cli_docs.py")
    assert "advisor ask --help changed" in problem
    assert "\n" not in problem


def test_a_new_subcommand_is_reported_undocumented(monkeypatch: pytest.MonkeyPatch) -> None:
    def prune() -> None:
        """Forget models nobody uses."""

    monkeypatch.setattr(models_app, "registered_commands", [*models_app.registered_commands])
    models_app.command("prune")(prune)
    texts = cli_docs.help_texts(cli_docs.root_command())
    assert "advisor models prune" in texts
    assert "advisor models prune" not in cli_docs.documented(_docs())
    problem = cli_docs.stale_report(texts, _docs())
    assert problem is not None and "advisor models prune is not documented" in problem


def test_check_exits_1_with_one_line_when_stale_and_0_once_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.md"
    out.write_text(_docs().replace("## advisor ask\n", "## advisor asks\n"), encoding="utf-8")
    assert cli_docs.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("docs/cli.md is stale; run python scripts/cli_docs.py")
    assert "advisor ask is not documented" in err[0] and "advisor asks is documented but no longer exists" in err[0]
    assert cli_docs.main(["--out", str(out)]) == 0
    assert cli_docs.main(["--check", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == cli_docs.render(cli_docs.help_texts(cli_docs.root_command()))


def test_the_section_parser_reads_back_what_render_writes() -> None:
    texts = {"advisor": "Usage: advisor\n\n```\nnested fence\n```", "advisor models list": "Usage: x"}
    assert cli_docs.documented(cli_docs.render(texts)) == texts
    assert cli_docs.stale_report(texts, cli_docs.render(texts)) is None
