"""The web pages in a real browser: Debian's chromium, headless, through /usr/bin/chromedriver.

Skipped only when chromium or chromedriver is not installed here (and not
even then when REQUIRE_BROWSER_TESTS=1, as .ci/run sets: CI installs both).
No browser is ever downloaded. Set WEB_SCREENSHOT=docs/ask-page.png to save
the ask page as the README shows it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import EVIL, QUESTION

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
MISSING = (
    "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    if not (CHROMIUM and CHROMEDRIVER)
    else ""
)

if MISSING and os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
    raise RuntimeError(f"REQUIRE_BROWSER_TESTS=1 but {MISSING}")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=MISSING or "browser present"),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,900",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def wait_for(check: Callable[[], Any], timeout: float = 120, what: str = "the page") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # an element not there yet, a stale one
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def open_page(browser: Any, url: str) -> None:
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 30, "the page to start")


def ask(browser: Any, question: str, timeout: float = 120) -> Any:
    """Type ``question`` and press Enter (the keyboard path); the finished turn element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(browser.find_elements(By.CSS_SELECTOR, "article.turn"))
    box = browser.find_element(By.ID, "question")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    def finished() -> Any:
        turns = browser.find_elements(By.CSS_SELECTOR, "article.turn")
        if len(turns) > before and turns[-1].get_attribute("data-state") in ("done", "error"):
            return turns[-1]
        return None

    turn = wait_for(finished, timeout, what="the answer")
    assert turn.get_attribute("data-state") == "done", turn.text
    return turn


def test_ask_shows_the_answer_mode_and_citations_and_opens_a_citation(browser: Any, web_server: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, web_server.url)
    turn = ask(browser, QUESTION)
    assert turn.find_element(By.CSS_SELECTOR, "h2").text == QUESTION
    assert "Extractive" in turn.find_element(By.CSS_SELECTOR, ".mode").text
    assert turn.find_element(By.CSS_SELECTOR, ".mode").get_attribute("data-mode") == "extractive"
    answer = turn.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert "[1]" in answer
    citations = turn.find_elements(By.CSS_SELECTOR, "ol.citations li")
    assert citations, "no citations shown"
    data = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch('/api/ask', {method: 'POST', headers: {'content-type': 'application/json'},
          body: JSON.stringify({question: arguments[0], llm: false})}).then(r => r.json()).then(done);""",
        QUESTION,
    )
    first = data["citations"][0]
    assert citations[0].find_element(By.CSS_SELECTOR, "button").text.startswith(f"[1] {first['title']}")
    # open the first citation from the keyboard
    button = citations[0].find_element(By.CSS_SELECTOR, "button.cite-open")
    browser.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)
    viewer = browser.find_element(By.ID, "viewer")
    sentence = wait_for(lambda: viewer.find_element(By.CSS_SELECTOR, "mark.sentence"), 30, "the highlighted sentence")
    assert viewer.is_displayed()
    expected = first["supporting_sentence"]
    assert sentence.get_attribute("data-start") == str(expected["start"])
    assert sentence.get_attribute("data-end") == str(expected["end"])
    exact = browser.execute_script(
        "return [document.querySelector('#viewer mark.sentence').textContent,"
        " document.querySelector('#viewer mark.passage').textContent,"
        " document.querySelector('#viewer-text').textContent]"
    )
    assert exact[0] == expected["text"]
    assert exact[1] == first["text"]
    document = browser.execute_script(
        "return fetch('/api/document?source=' + encodeURIComponent(arguments[0])).then(r => r.json())",
        first["source"],
    )
    text = document["text"]
    assert exact[2] == text  # the whole document, unchanged, with the marks at the citation's offsets
    assert text[first["start"] : first["end"]] == first["text"]
    assert text[expected["start"] : expected["end"]] == expected["text"]
    if os.environ.get("WEB_SCREENSHOT"):
        browser.save_screenshot(os.environ["WEB_SCREENSHOT"])
    # Escape closes the viewer and returns to the citation
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(lambda: not viewer.is_displayed(), 10, "the viewer to close")
    # a follow-up on the same page carries the conversation (earlier questions as history)
    browser.execute_script(
        """window.__bodies = [];
        const original = window.fetch;
        window.fetch = (url, options) => {
          if (options && options.body) window.__bodies.push(JSON.parse(options.body));
          return original(url, options);
        };"""
    )
    follow = ask(browser, "And what should I say in the message?")
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.turn")) == 2
    assert follow.find_elements(By.CSS_SELECTOR, "ol.citations li")
    sent = browser.execute_script("return window.__bodies")
    assert sent[-1]["history"] == [QUESTION] and sent[-1]["question"] == "And what should I say in the message?"


def test_a_model_written_answer_streams_its_draft_before_the_checked_answer(browser: Any, web_server: Any) -> None:
    """With the model on, its draft appears token by token (SSE), labelled, then the checked answer."""
    from selenium.webdriver.common.by import By

    open_page(browser, web_server.url)
    box = browser.find_element(By.ID, "llm")
    assert box.is_enabled()
    box.click()
    try:
        browser.execute_script(
            """window.__drafts = [];
            new MutationObserver(() => {
              const d = document.querySelector('article.turn:last-of-type .draft');
              if (d && d.textContent) window.__drafts.push(d.textContent.length);
            }).observe(document.getElementById('conversation'),
                       {subtree: true, childList: true, characterData: true});"""
        )
        # the real model on one thread, translations uncached: about 80 s alone on this machine
        turn = ask(browser, QUESTION, timeout=300)
        draft = turn.find_element(By.CSS_SELECTOR, ".draft").text
        label = turn.find_element(By.CSS_SELECTOR, ".draft-label").text
        mode = turn.find_element(By.CSS_SELECTOR, ".mode").get_attribute("data-mode")
        assert draft.strip(), "no draft was streamed"
        assert label.startswith("Model draft (checked" if mode == "llm" else "Model draft (discarded"), label
        seen = browser.execute_script("return window.__drafts")
        assert len(seen) >= 1 and seen == sorted(seen), seen  # the draft grew as tokens arrived
        assert turn.find_elements(By.CSS_SELECTOR, "ol.citations li")
    finally:
        browser.find_element(By.ID, "llm").click()


def test_a_translation_is_shown_beside_a_foreign_quote(browser: Any, web_server: Any) -> None:
    """A citation's optional ``translation`` is rendered beside its quote (and in the viewer)."""
    from selenium.webdriver.common.by import By

    open_page(browser, web_server.url)
    shown = browser.execute_script(
        """const answer = {question: 'q', answer: 'See [1].', mode: 'extractive', lang: 'en', notes: [],
             citations: [{marker: 1, source: 'good-word-timing', title: 'T', lang: 'es', start: 0, end: 5,
               text: 'Hola.', flagged: false, supporting_sentence: null, translation: 'Hello.'}]};
        const list = document.createElement('ol');
        renderCitations(list, answer.citations);
        return list.querySelector('.translation').textContent;"""
    )
    assert shown == "Hello."
    assert not browser.find_elements(By.CSS_SELECTOR, "#conversation .translation")  # none without the field
    # a German question whose German translation was refused: the checked English one, labelled as English
    english = browser.execute_script(
        """const list = document.createElement('ol');
        document.body.append(list);
        renderCitations(list, [{marker: 1, source: 'good-word-timing', title: 'T', lang: 'es', start: 0, end: 5,
          text: 'Hola.', flagged: false, supporting_sentence: null, translation: null, english_translation: 'Hello.'}]);
        const p = list.querySelector('.translation');
        const label = getComputedStyle(p, '::before').content;
        list.remove();
        return [p.textContent, p.lang, label];"""
    )
    assert english[:2] == ["Hello.", "en"] and english[2].startswith('"English translation'), english
    # a model-written answer that rests on a machine translation says so in its mode line
    modes = browser.execute_script(
        """const cite = (translation) => ({marker: 1, lang: 'es', translation});
        return [modeText({mode: 'llm', answer: 'Hello there. [1]', citations: [cite('Hello.')]}),
                modeText({mode: 'llm', answer: 'Hello there. [1]', citations: [cite(null)]})];"""
    )
    assert "from the machine translation of [1]" in modes[0] and "the quote is the source" in modes[0]
    assert modes[1].startswith("Written by the language model;") and "translation" not in modes[1]
    # an extractive answer is its quotes: each foreign one with its translation right beneath it
    beneath = browser.execute_script(
        """const cite = (marker, translation, english) => ({marker, title: 'T', lang: 'es',
             translation, english_translation: english});
        const div = document.createElement('div');
        div.className = 'answer-text';
        document.body.append(div);
        const text = 'Lo que dicen:\\n- Key point: “Hola.” [1]\\n- Also: “Adiós.” [2]\\n- Also: “Nada.” [3]';
        const cites = [cite(1, 'Hello.', null), cite(2, null, 'Goodbye.'), cite(3, null, null)];
        renderAnswerText(div, text, cites, true);
        const spans = [...div.querySelectorAll('.translation')].map((s) => [
          s.textContent, s.lang, getComputedStyle(s).display, s.previousSibling.textContent]);
        renderAnswerText(div, text, cites, false);
        const written = div.querySelectorAll('.translation').length;
        div.remove();
        return [spans, written];"""
    )
    assert beneath[0] == [["Hello.", "", "block", "[1]"], ["Goodbye.", "en", "block", "[2]"]], beneath
    assert beneath[1] == 0  # a model-written answer keeps its translations under its sources
    extractive = browser.execute_script(
        """const cite = (translation) => ({marker: 1, lang: 'es', translation});
        return [modeText({mode: 'extractive', answer: 'x [1]', citations: [cite('Hello.')]}),
                modeText({mode: 'extractive', answer: 'x [1]', citations: [cite(null)]})];"""
    )
    assert "machine translation beneath it" in extractive[0] and "no model-written text" in extractive[1]


def test_upload_a_note_then_ask_about_it_and_see_it_cited(browser: Any, web_server: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    note = tmp_path / "plumbus-interview.md"
    note.write_text(
        "# Plumbus interview notes\n\nBefore a plumbus interview, bring three printed copies of your portfolio.\n",
        encoding="utf-8",
    )
    open_page(browser, web_server.url + "documents")
    browser.find_element(By.ID, "files").send_keys(str(note))
    browser.find_element(By.ID, "upload").click()
    item = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#uploads li[data-state]"), 120, "the upload to finish"
    )
    assert item.get_attribute("data-state") == "done", item.text
    assert "1 added" in item.text
    assert browser.find_element(By.CSS_SELECTOR, "#uploads progress").get_attribute("value") == "100"
    rows = wait_for(
        lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr") if "Plumbus" in r.text],
        30,
        "the new row",
    )
    assert "same as stored" in rows[0].text and "en" in rows[0].text
    open_page(browser, web_server.url)
    turn = ask(browser, "What should I bring to a plumbus interview?")
    titles = [b.text for b in turn.find_elements(By.CSS_SELECTOR, "ol.citations button.cite-open")]
    assert any("Plumbus interview notes" in t for t in titles), titles
    assert "portfolio" in turn.find_element(By.CSS_SELECTOR, ".answer-text").text
    # and remove it again from the documents page (a confirmation first; the file stays)
    open_page(browser, web_server.url + "documents")
    row = wait_for(
        lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr") if "Plumbus" in r.text],
        30,
        "the row",
    )[0]
    saved = Path(row.get_attribute("data-source"))
    row.find_element(By.CSS_SELECTOR, "button.remove").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: "Removed" in browser.find_element(By.ID, "status").text, 30, "the removal")
    assert "Plumbus" not in browser.find_element(By.ID, "documents").text
    assert saved.is_file()


def test_a_bad_upload_shows_the_clis_message(browser: Any, web_server: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    binary = tmp_path / "scan.txt"
    binary.write_bytes(b"\x00\x01\x02\x03" * 100)
    open_page(browser, web_server.url + "documents")
    count = len(browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr"))
    browser.find_element(By.ID, "files").send_keys(str(binary))
    browser.find_element(By.ID, "upload").click()
    item = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#uploads li[data-state]"), 60, "the refusal")
    assert item.get_attribute("data-state") == "error"
    assert "scan.txt looks binary, not text; convert it to .txt or .md first" in item.text
    time.sleep(0.5)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#documents tbody tr")) == count


def test_a_document_with_script_runs_nothing(browser: Any, web_server: Any, web_advisor: Any) -> None:
    from selenium.webdriver.common.by import By

    from advisor.uploads import add_upload

    source = add_upload(web_advisor, "zyxwv-care.md", EVIL.encode()).source
    try:
        open_page(browser, web_server.url + "documents")
        wait_for(lambda: "Zyxwv" in browser.find_element(By.ID, "documents").text, 30, "the document row")
        open_page(browser, web_server.url)
        turn = ask(browser, "How often do zyxwv gadgets need oiling?")
        buttons = [b for b in turn.find_elements(By.CSS_SELECTOR, "ol.citations button.cite-open") if "Zyxwv" in b.text]
        assert buttons, turn.text
        buttons[0].click()
        wait_for(lambda: "<script>" in browser.find_element(By.ID, "viewer-text").text, 30, "the document text")
        time.sleep(0.5)  # an onerror handler would have fired by now
        assert browser.execute_script("return window.__pwned === undefined")
        assert not browser.find_elements(By.CSS_SELECTOR, "#viewer-text script, #viewer-text img, .turn img")
        assert "<img src=x onerror=" in browser.find_element(By.ID, "viewer-text").text
        logs = browser.get_log("browser") if hasattr(browser, "get_log") else []
        assert not [e for e in logs if "alert" in e.get("message", "")]
    finally:
        web_advisor.remove([source])


def test_the_ask_page_is_readable_on_a_phone(browser: Any, web_server: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    try:
        open_page(browser, web_server.url)
        turn = ask(browser, QUESTION)
        turn.find_element(By.CSS_SELECTOR, "button.cite-open").click()
        wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#viewer mark.sentence"), 30, "the viewer")
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width  # no sideways scrolling
        size = browser.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 16
    finally:
        browser.set_window_size(1100, 900)
