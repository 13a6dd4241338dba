"""The README's two commands are what CI runs and what a fresh machine needs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _readme_commands() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README opens with a bash block holding its two commands"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 2, lines
    return lines[0], lines[1]


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    _, test_command = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
    assert test_command.endswith("pytest")


def test_both_commands_build_llama_cpp_portably_and_pin_torch_for_tests() -> None:
    install, test_command = _readme_commands()
    for command in (install, test_command):
        assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install' in command  # a native AMX build dies here
    assert '"torch==2.13.0"' in test_command  # an unpinned torch resolves to a multi-GB CUDA build
    assert "torch" not in install  # the default install needs no torch
    assert "advisor ask" in install


def test_the_readme_stays_a_short_guide() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; details belong in docs/, history in CHANGELOG.md"
    text = "\n".join(lines)
    for link in ("docs/cli.md", "docs/reference.md", "CHANGELOG.md"):
        assert f"]({link})" in text, link


def test_the_reference_settings_table_lists_every_setting_and_nothing_else() -> None:
    from advisor.settings import Settings

    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    section = text[text.index("## Settings") :]
    section = section[: section.index("\n## ", 5)]
    names: set[str] = set()
    for line in section.splitlines():
        m = re.match(r"\|\s*([a-z_0-9, ]+?)\s*\|", line)
        if m and m.group(1) != "setting":
            names.update(n.strip() for n in m.group(1).split(","))
    assert names == set(Settings.model_fields)
