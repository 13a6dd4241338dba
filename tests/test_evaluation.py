"""Batch evaluation: scenario parsing, metrics, reports, floors and baselines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.errors import InputError, ScenarioError
from advisor.evaluation import (
    answer_language,
    check_floors,
    compare,
    load_scenarios,
    parse_floors,
    score_scenario,
    write_reports,
)
from advisor.retrieval import Retrieval, Retriever
from advisor.types import Passage

SHIPPED = Path(__file__).parent / "scenarios" / "shipped.yaml"
SMOKE = Path(__file__).parent / "scenarios" / "smoke.jsonl"
HOLDOUT = Path(__file__).parent / "scenarios" / "holdout.yaml"
SCOPE = Path(__file__).parent / "scenarios" / "scope.yaml"


def _p(source: str, text: str = "some text", chunk: str = "") -> Passage:
    return Passage(source=source, title=source, lang="es", start=0, end=len(text), text=text, chunk_id=chunk or source)


# -- scenario files ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "min_in", "min_out"), [(SHIPPED, 40, 6), (HOLDOUT, 15, 3), (SCOPE, 18, 12)])
def test_scenario_sets_cover_every_article_and_language(path: Path, min_in: int, min_out: int) -> None:
    items = load_scenarios(path)
    inscope = [s for s in items if s.in_scope]
    assert len(inscope) >= min_in and len(items) - len(inscope) >= min_out
    assert {s.language for s in items} == {"en", "es", "de"}
    corpus = Path(__file__).parent.parent / "corpus"
    ids = {p.stem for p in corpus.glob("*.txt")}
    assert {src for s in inscope for src in s.expect_sources} == ids  # every article covered
    for s in inscope:  # evidence is verbatim in the expected article
        text = (corpus / f"{s.expect_sources[0]}.txt").read_text(encoding="utf-8")
        assert all(" ".join(e.split()) in " ".join(text.split()) for e in s.expect_evidence), s.id
    assert len(load_scenarios(SMOKE)) == 6
    shipped = {s.question for s in load_scenarios(SHIPPED)}
    assert not {s.question for s in load_scenarios(HOLDOUT)} & shipped
    assert not {s.question for s in load_scenarios(SCOPE)} & shipped


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        (
            "- id: a\n  question: q\n  language: en\n  expect_sources: [x]\n- id: b\n  question: [\n",
            ".yaml",
            r":[67]: ",
        ),
        (
            "- id: a\n  question: q\n  language: en\n  expect_sources: [x]\n- id: b\n  language: en\n",
            ".yaml",
            r":5 .*'question'",
        ),
        ("- id: a\n  question: q\n  language: fr\n  expect_sources: [x]\n", ".yaml", r"'language' must be one of"),
        ("- id: a\n  question: q\n  language: en\n  expect_sourcez: [x]\n", ".yaml", r"unknown field 'expect_sourcez'"),
        ("- id: a\n  question: q\n  language: en\n", ".yaml", r"expect_sources and/or expect_evidence"),
        ("- id: a\n  question: q\n  language: en\n  expect_abstain: yes please\n", ".yaml", r"true or false"),
        ("{}\n", ".yaml", r"a list of scenarios"),
        (
            '{"id": "a", "question": "q", "language": "en", "expect_abstain": true}\n{"id": "b",\n',
            ".jsonl",
            r":2: invalid JSON",
        ),
        (
            '{"id": "a", "question": "q", "language": "en", "expect_abstain": true}\n' * 2,
            ".jsonl",
            r"duplicate scenario id 'a'",
        ),
        ("", ".yaml", r"no scenarios|a list"),
        ("x", ".txt", r"\.yaml or \.jsonl"),
        pytest.param(
            "- {1: a, foo: b, id: x, question: q, language: en}\n", ".yaml", r":1 .*unknown field '1'", id="int-key"
        ),
        pytest.param("[" * 5000 + "]" * 5000 + "\n", ".yaml", r"s\.yaml: .*nested too deeply", id="deep-yaml"),
        pytest.param('{"a": ' * 5000 + "1" + "}" * 5000 + "\n", ".jsonl", r":1: .*nested too deeply", id="deep-jsonl"),
        pytest.param(
            "- id: a\n  question: q\n  language: en\n  expect_abstain: true\n"
            "- id: long-one\n  question: " + "word " * 500 + "\n  language: en\n  expect_abstain: true\n",
            ".yaml",
            r":5 .*'long-one' is 2499 characters long; shorten it to at most 2000",
            id="long-question-yaml",
        ),
        pytest.param(
            json.dumps({"id": "long-j", "question": "x " * 1500, "language": "en", "expect_abstain": True}) + "\n",
            ".jsonl",
            r":1: .*'long-j' is 2999 characters long; shorten it",
            id="long-question-jsonl",
        ),
        pytest.param(
            "- id: a\n  question: '  \t '\n  language: en\n  expect_abstain: true\n",
            ".yaml",
            r":1 .*'question' is missing or empty",
            id="blank-question",
        ),
    ],
)
def test_bad_scenario_files_name_the_line_and_field(tmp_path: Path, content: str, suffix: str, expected: str) -> None:
    path = tmp_path / f"s{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ScenarioError, match=expected) as info:
        load_scenarios(path)
    assert "\n" not in str(info.value)


def test_a_question_at_the_advisors_limit_is_accepted(tmp_path: Path) -> None:
    from advisor.api import MAX_QUESTION_CHARS

    path = tmp_path / "s.jsonl"
    rows = [
        {"id": "at-limit", "question": "x" * MAX_QUESTION_CHARS, "language": "en", "expect_abstain": True},
        {"id": "over", "question": "x" * (MAX_QUESTION_CHARS + 1), "language": "en", "expect_abstain": True},
    ]
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    assert [s.id for s in load_scenarios(path)] == ["at-limit"]
    path.write_text(json.dumps(rows[1]) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=f"'over' is {MAX_QUESTION_CHARS + 1} characters long"):
        load_scenarios(path)


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenarios(tmp_path / "nope.yaml")


# -- metrics ------------------------------------------------------------------------


def test_retrieval_metrics_follow_their_definitions(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "a",
                "question": "q",
                "language": "en",
                "expect_sources": ["good"],
                "expect_evidence": ["the Right phrase"],
            }
        )
        + "\n"
        + json.dumps({"id": "b", "question": "q", "language": "en", "expect_abstain": True})
        + "\n",
        encoding="utf-8",
    )
    inscope, oos = load_scenarios(path)
    ranked = [_p("bad"), _p("good", "no phrase here"), _p("x"), _p("good", "has the right   phrase!"), _p("y")]
    m, failures = score_scenario(inscope, ranked, abstained=False)
    assert (m["source_hit@1"], m["source_hit@3"], m["source_hit@5"]) == (0.0, 1.0, 1.0)
    assert m["mrr"] == pytest.approx(0.5)
    assert (m["evidence_hit@1"], m["evidence_hit@3"], m["evidence_hit@5"]) == (0.0, 0.0, 1.0)
    assert m["evidence_mrr"] == pytest.approx(0.25)
    assert not failures
    m, failures = score_scenario(inscope, ranked[:1], abstained=True)
    assert m["source_hit@5"] == 0.0 and len(failures) == 3
    _, failures = score_scenario(oos, ranked, abstained=False)
    assert failures == ["should have abstained: the corpus does not cover this"]
    assert score_scenario(oos, ranked, abstained=True)[1] == []


def test_answer_language_ignores_quotes_and_markers() -> None:
    text = "Lo que dicen las fuentes sobre su pregunta:\n- “Sie sollten warten, bis eine Entscheidung da ist.” [1]"
    assert answer_language(text) == "es"
    assert answer_language("What the sources say: “Warten Sie einfach, bis eine Entscheidung da ist.” [1]") == "en"
    # a quote holding “nested” quotes is still one quote (found in li-de-04's answer)
    nested = (
        "Was die Quellen zu Ihrer Frage sagen:\n- Wie: “Si hubieras dicho “La entrevista no fue genial, etc.”, "
        "ella se habría basado en decir “Sí, el equipo de contratación sintió lo mismo …” [2]"
    )
    assert answer_language(nested) == "de"


def test_floors_and_ceilings() -> None:
    summary: dict[str, Any] = {"overall": {"source_hit@5": 0.8, "false_abstain_rate": 0.1, "total_ms_p50": 50.0}}
    floors = parse_floors(["source_hit@5=0.9", "false_abstain_rate=0.05", "total_ms_p50=100"])
    failures = check_floors(summary, floors)
    assert len(failures) == 2
    assert any("below its floor" in f for f in failures) and any("above its ceiling" in f for f in failures)
    assert check_floors(summary, parse_floors(["source_hit@5=0.8"])) == []
    with pytest.raises(InputError, match="'hit@7' for --min was not measured"):
        check_floors(summary, {"hit@7": 1.0})
    with pytest.raises(InputError, match="drop --retrieval-only"):
        check_floors(summary, {"citation_valid": 1.0})  # an answer metric, absent from a retrieval-only run
    for bad in (["source_hit@5"], ["source_hit@5=nan"], ["source_hit@5=inf"], ["source_hit@5=-inf"]):
        with pytest.raises(InputError, match="METRIC=VALUE"):  # a nan floor would pass every run
            parse_floors(bad)


def test_a_baseline_is_read_before_the_run_and_compared(tmp_path: Path) -> None:
    from advisor.evaluation import deltas, load_baseline

    with pytest.raises(InputError, match="cannot read baseline"):
        load_baseline(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"overall": [1, 2]}', encoding="utf-8")
    with pytest.raises(InputError, match="cannot read baseline"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text('{"overall": {"mrr": 0.5, "pass_rate": 0.7}}', encoding="utf-8")
    old = load_baseline(tmp_path / "old.json")
    rows = deltas({"overall": {"mrr": 0.75, "scenarios": 3.0}}, old)
    assert rows["mrr"] == {"baseline": 0.5, "now": 0.75, "delta": 0.25}
    assert rows["pass_rate"] == {"baseline": 0.7, "now": None} and rows["scenarios"]["baseline"] is None
    assert "+0.25" in compare({"overall": {"mrr": 0.75}}, old)


# -- end to end, with a real advisor and a deliberately broken retriever ------------


def _broken(self: Retriever, question: str, k: int | None = None, context: str = "") -> Retrieval:
    """Return the *least* similar passages: a retriever that is wrong on purpose."""
    good = Retriever._healthy(self, question, k=50, context=context)  # type: ignore[attr-defined]
    worst = list(reversed(good.passages))[: k or 5]
    return Retrieval(question, good.lang, worst, False, "", good.timings)


def _eval_cli(home: str, out: Path, *extra: str) -> Any:
    """``advisor eval`` of the shipped set, retrieval only, with a floor on source_hit@5."""
    args = ["eval", str(SHIPPED), "--retrieval-only", "--out", str(out), "--home", home, "--min", "source_hit@5=0.8"]
    return CliRunner().invoke(app, [*args, *extra])


@pytest.mark.integration
def test_eval_cli_writes_reports_and_a_broken_retriever_fails_the_gate(
    real_advisor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(real_advisor.settings.home)
    healthy_out = tmp_path / "healthy"
    result = _eval_cli(home, healthy_out)
    assert result.exit_code == 0, result.output
    for name in ("results.jsonl", "summary.json", "report.md", "junit.xml"):
        assert (healthy_out / name).is_file()
    report = (healthy_out / "report.md").read_text(encoding="utf-8")
    assert "lang=en" in report and "lang=es" in report and "lang=de" in report
    healthy = json.loads((healthy_out / "summary.json").read_text(encoding="utf-8"))["overall"]

    monkeypatch.setattr(Retriever, "_healthy", Retriever.retrieve, raising=False)
    monkeypatch.setattr(Retriever, "retrieve", _broken)
    broken_out = tmp_path / "broken"
    result = _eval_cli(home, broken_out, "--baseline", str(healthy_out / "summary.json"))
    assert result.exit_code == 1
    assert "source_hit@5" in result.output and "below its floor" in result.output
    assert "baseline" in result.output  # the delta table was printed
    as_json = _eval_cli(home, tmp_path / "json", "--baseline", str(healthy_out / "summary.json"), "--json")
    assert as_json.exit_code == 1
    delta = json.loads(as_json.stdout)["baseline"]["source_hit@5"]  # regression: --json dropped the baseline
    assert delta["baseline"] == healthy["source_hit@5"] and delta["delta"] < 0
    broken = json.loads((broken_out / "summary.json").read_text(encoding="utf-8"))["overall"]
    assert broken["source_hit@5"] < healthy["source_hit@5"]
    suite = ET.parse(broken_out / "junit.xml").getroot()
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    rows = [json.loads(line) for line in (broken_out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert int(suite.get("failures", "0")) == len(failed) == sum(not r["passed"] for r in rows)
    assert len(failed) > sum(
        not r["passed"]
        for r in map(json.loads, (healthy_out / "results.jsonl").read_text(encoding="utf-8").splitlines())
    )


@pytest.mark.integration
def test_evaluate_api_with_answers(real_advisor: Any, tmp_path: Path) -> None:
    report = real_advisor.evaluate(SMOKE, llm=False)
    assert len(report.results) == 6
    o = report.summary["overall"]
    assert o["citation_valid"] == 1.0
    assert 0.0 <= o["citation_precision"] <= 1.0 and "language_match" in o
    write_reports(report, tmp_path)
    row = json.loads((tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()[0])
    for key in ("question", "answer", "mode", "abstained", "citations", "retrieved", "metrics", "timings"):
        assert key in row
    assert "retrieve_ms" in row["timings"] and "total_ms" in row["timings"]
    assert "delta" in compare(report.summary, tmp_path / "summary.json")


def test_an_interrupted_concurrent_run_stops_without_running_the_queued_scenarios(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: Ctrl-C (or a failing scenario) in eval --concurrency waited for every queued scenario."""
    import threading
    import time
    from types import SimpleNamespace

    import advisor.evaluation as ev

    ran: list[str] = []
    lock = threading.Lock()

    def run_one(advisor: Any, scenario: Any, *args: Any) -> Any:
        with lock:
            ran.append(scenario.id)
        if scenario.id == "s0":
            raise KeyboardInterrupt
        time.sleep(0.05)
        return None

    monkeypatch.setattr(ev, "_run_one", run_one)
    fake = SimpleNamespace(settings=SimpleNamespace(llm_url="http://x"), search=lambda q: None)
    items = [ev.Scenario(f"s{i}", f"question {i}?", "en") for i in range(100)]
    with pytest.raises(KeyboardInterrupt):
        ev.run_evaluation(fake, items, concurrency=2)  # type: ignore[arg-type]
    assert len(ran) < 10
