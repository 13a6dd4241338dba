// The ask page. Every text from a document, an answer or the server is put on the page
// with textContent (never innerHTML), so a document holding <script> or <img onerror=...>
// shows those characters and runs nothing.
"use strict";
// $, el and errorText come from common.js, which the page loads first.

const asked = [];          // earlier questions of this conversation, oldest first
const docs = new Map();    // source id -> the document as /api/document returned it
let lastOpener = null;     // the button that opened the viewer (focus returns to it)

const MODES = {
  llm: "Written by the language model; every sentence was checked against the source it cites.",
  extractive: "Extractive: verbatim sentences quoted from the sources (no model-written text).",
  abstain: "Abstained: the documents do not cover this question.",
};

// -- streaming: server-sent events over a POST ---------------------------------------
async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// -- one question and its answer --------------------------------------------------------
// ``extractive``: the answer is its quotes, one a line; each foreign one gets its translation
// right beneath it, so the answer reads in the asker's language.
function renderAnswerText(container, text, citations, extractive = false) {
  container.replaceChildren();
  const parts = text.split(/\[(\d+)\]/);
  let afterBlock = false; // a translation beneath a quote ends its line itself
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      const rest = afterBlock ? part.replace(/^[ \t]*\n/, "") : part;
      afterBlock = false;
      if (rest) container.append(document.createTextNode(rest));
      return;
    }
    const n = Number(part);
    const cite = citations[n - 1];
    if (!cite) {
      container.append(document.createTextNode(`[${part}]`));
      return;
    }
    const button = el("button", { type: "button", class: "marker", "aria-label": `Open source ${n}: ${cite.title}` }, `[${n}]`);
    button.addEventListener("click", () => openCitation(cite, button));
    container.append(button);
    const endsLine = /^[ \t]*(\n|$)/.test(parts[i + 1] || "");
    const beneath = extractive && endsLine ? translationOf(cite, "span", "beneath") : null;
    if (beneath) {
      container.append(beneath);
      afterBlock = true;
    }
  });
}

function renderCitations(list, citations) {
  list.replaceChildren();
  for (const cite of citations) {
    const item = el("li", { class: "citation", "data-marker": String(cite.marker) });
    const open = el("button", { type: "button", class: "cite-open" }, `[${cite.marker}] ${cite.title} (${cite.lang})`);
    open.addEventListener("click", () => openCitation(cite, open));
    item.append(open);
    if (cite.flagged) item.append(" ", el("span", { class: "flag" }, "contains text addressed to an AI"));
    const sentence = cite.supporting_sentence;
    item.append(el("blockquote", { class: "quote", lang: cite.lang }, sentence ? sentence.text : cite.text));
    const translation = translationOf(cite);
    if (translation) item.append(translation);
    list.append(item);
  }
}

// A quote's checked translation into the question's language; else, when that was refused, its
// checked English one, labelled as English; else null.
function translationOf(cite, tag = "p", extra = "") {
  const more = extra ? ` ${extra}` : "";
  if (cite.translation) return el(tag, { class: `translation${more}` }, cite.translation);
  if (cite.english_translation) return el(tag, { class: `translation english${more}`, lang: "en" }, cite.english_translation);
  return null;
}

// How the answer was made; a model-written one says when it rests on a machine translation.
function modeText(answer) {
  if (answer.mode === "extractive" && answer.citations.some((c) => c.translation || c.english_translation)) {
    return "Extractive: verbatim sentences quoted from the sources; each in another language has the "
      + "model's checked machine translation beneath it (may be inexact: the quote is the source).";
  }
  if (answer.mode !== "llm") return MODES[answer.mode] || answer.mode;
  const cited = [...new Set([...answer.answer.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])))];
  const via = cited.filter((n) => answer.citations[n - 1] && answer.citations[n - 1].translation);
  if (!via.length) return MODES.llm;
  return `Written by the language model from the machine translation of ${via.map((n) => `[${n}]`).join(", ")} `
    + "and checked against it; a machine translation may be inexact: the quote is the source.";
}

function renderAnswer(turn, answer) {
  turn.querySelector(".status").textContent = "";
  const draft = turn.querySelector(".draft");
  if (draft.textContent) {
    draft.previousElementSibling.textContent = answer.mode === "llm"
      ? "Model draft (checked: below are only its sentences that the sources support)"
      : "Model draft (discarded: the sources do not support it; below is what they say)";
  }
  const text = turn.querySelector(".answer-text");
  text.lang = answer.lang || "";
  renderAnswerText(text, answer.answer, answer.citations, answer.mode === "extractive");
  const mode = turn.querySelector(".mode");
  mode.textContent = modeText(answer);
  mode.className = `mode mode-${answer.mode}`;
  mode.dataset.mode = answer.mode;
  const notes = turn.querySelector(".notes");
  for (const note of answer.notes) notes.append(el("li", {}, note));
  renderCitations(turn.querySelector(".citations"), answer.citations);
  turn.dataset.state = "done";
}

function newTurn(question) {
  const turn = el("article", { class: "turn", "data-state": "waiting" });
  turn.append(
    el("h2", {}, question),
    el("p", { class: "status", role: "status" }, "Waiting for the advisor…"),
    el("p", { class: "meta draft-label" }),
    el("div", { class: "draft" }),
    el("div", { class: "answer-text" }),
    el("p", { class: "mode" }),
    el("ul", { class: "notes" }),
    el("ol", { class: "citations", "aria-label": "Sources" }),
  );
  $("conversation").append(turn);
  return turn;
}

async function ask(question) {
  const turn = newTurn(question);
  const llm = $("llm").checked;
  const button = $("ask");
  button.disabled = true;
  try {
    const response = await fetch("/api/ask/stream", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question, history: asked.slice(), llm }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    let answered = false;
    for await (const { event, data } of sse(response)) {
      if (event === "token") {
        const draft = turn.querySelector(".draft");
        if (!draft.textContent) draft.previousElementSibling.textContent = "Model draft (not yet checked against the sources):";
        turn.querySelector(".status").textContent = "The model is writing…";
        turn.dataset.state = "streaming";
        draft.append(document.createTextNode(data.text));
      } else if (event === "answer") {
        renderAnswer(turn, data);
        answered = true;
      } else if (event === "error") {
        throw new Error(data.error);
      }
    }
    if (!answered) throw new Error("the answer did not arrive (the connection closed early)");
    asked.push(question);
  } catch (err) {
    const status = turn.querySelector(".status");
    status.textContent = `Error: ${err.message}`;
    status.className = "status error";
    status.setAttribute("role", "alert");
    turn.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
  turn.scrollIntoView({ block: "nearest" });
}

// -- the document viewer: the passage and its sentence at their exact offsets -------------
async function loadDocument(source) {
  if (!docs.has(source)) {
    const response = await fetch(`/api/document?source=${encodeURIComponent(source)}`);
    if (!response.ok) throw new Error(await errorText(response));
    docs.set(source, await response.json());
  }
  return docs.get(source);
}

function highlighted(text, cite) {
  // [before][passage: [a][sentence][b]][after], every piece a text node
  const fragment = document.createDocumentFragment();
  const clamp = (n) => Math.max(0, Math.min(text.length, n));
  const start = clamp(cite.start);
  const end = clamp(cite.end);
  fragment.append(document.createTextNode(text.slice(0, start)));
  const passage = el("mark", { class: "passage", "data-start": String(start), "data-end": String(end) });
  const s = cite.supporting_sentence;
  if (s && s.start >= start && s.end <= end && s.start < s.end) {
    passage.append(document.createTextNode(text.slice(start, s.start)));
    passage.append(el("mark", { class: "sentence", "data-start": String(s.start), "data-end": String(s.end) }, text.slice(s.start, s.end)));
    passage.append(document.createTextNode(text.slice(s.end, end)));
  } else {
    passage.append(document.createTextNode(text.slice(start, end)));
  }
  fragment.append(passage, document.createTextNode(text.slice(end)));
  return fragment;
}

async function openCitation(cite, opener) {
  lastOpener = opener;
  const viewer = $("viewer");
  viewer.hidden = false;
  $("viewer-title").textContent = `[${cite.marker}] ${cite.title}`;
  $("viewer-meta").textContent = "Loading…";
  $("viewer-text").replaceChildren();
  try {
    const doc = await loadDocument(cite.source);
    const states = {
      same: "",
      changed: " · the file changed since it was ingested: showing the stored passages",
      missing: " · the file is gone: showing the stored passages",
    };
    $("viewer-meta").textContent =
      `${doc.path} · characters ${cite.start}–${cite.end} · ${doc.lang}${states[doc.state] || ""}`;
    const quote = $("viewer-quote");
    quote.replaceChildren();
    quote.hidden = !cite.translation && !cite.english_translation;
    if (!quote.hidden) {
      const s = cite.supporting_sentence;
      quote.append(el("blockquote", { class: "quote", lang: cite.lang }, s ? s.text : cite.text),
        translationOf(cite));
    }
    const body = $("viewer-text");
    body.lang = doc.lang;
    body.append(highlighted(doc.text, cite));
    const target = body.querySelector("mark.sentence") || body.querySelector("mark.passage");
    viewer.focus({ preventScroll: true });
    if (target && viewer.scrollHeight > viewer.clientHeight + 1) {
      // the viewer scrolls on its own (wide screens): move it, not the page
      const offset = target.getBoundingClientRect().top - viewer.getBoundingClientRect().top;
      viewer.scrollTop += offset - viewer.clientHeight / 3;
    } else if (target) {
      target.scrollIntoView({ block: "center" });
    }
  } catch (err) {
    $("viewer-meta").textContent = `Error: ${err.message}`;
  }
}

function closeViewer() {
  $("viewer").hidden = true;
  if (lastOpener) lastOpener.focus();
}

// -- wiring -------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  const form = $("ask-form");
  const box = $("question");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = box.value.trim();
    if (!question || $("ask").disabled) return;
    box.value = "";
    ask(question);
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    asked.length = 0;
    $("conversation").replaceChildren();
    box.focus();
  });
  $("viewer-close").addEventListener("click", closeViewer);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("viewer").hidden) closeViewer();
  });
  try {
    const info = await (await fetch("/api/info")).json();
    $("llm").disabled = !info.llm;
    if (!info.llm) $("llm").parentElement.title = "the server was started with --no-llm";
  } catch (e) { /* the page still works; the server says what is wrong on the first question */ }
  document.body.dataset.ready = "1";
  box.focus();
});
