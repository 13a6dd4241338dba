// The documents page. Titles, paths and messages are set with textContent only.
"use strict";
// $, el and errorText come from common.js, which the page loads first.

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
  status.setAttribute("role", isError ? "alert" : "status");
}

const FILE_STATES = {
  same: "same as stored",
  changed: "changed since it was added: re-ingest it",
  missing: "file gone: remove it or add it again",
  "": "not checked",
};

function reportText(r) {
  const parts = [`${r.added} added`, `${r.updated} updated`, `${r.unchanged} unchanged`, `${r.removed} removed`];
  return `${parts.join(", ")} (${r.chunks_added} chunks embedded)`;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

async function refresh() {
  const response = await fetch("/api/documents");
  if (!response.ok) {
    say(await errorText(response), true);
    return;
  }
  const docs = await response.json();
  const body = $("documents").querySelector("tbody");
  body.replaceChildren();
  for (const d of docs) {
    const row = el("tr", { "data-source": d.source });
    const title = el("td", {}, d.title || "(untitled)");
    title.append(el("span", { class: "source-id" }, d.source === d.path ? d.path : `${d.source} · ${d.path}`));
    const file = el("td", { class: `file-${d.file || "unchecked"}` }, FILE_STATES[d.file] ?? d.file);
    if (!d.complete) file.append(el("div", {}, "incomplete: re-ingest it"));
    const actions = el("td");
    const again = el("button", { type: "button", class: "secondary reingest" }, "Re-ingest");
    again.setAttribute("aria-label", `Re-ingest ${d.title}`);
    again.addEventListener("click", async () => {
      say(`Re-ingesting ${d.title}…`);
      try {
        say(`Re-ingested ${d.title}: ${reportText(await post("/api/documents/reingest", { source: d.source }))}`);
      } catch (err) {
        say(`Error: ${err.message}`, true);
      }
      refresh();
    });
    const remove = el("button", { type: "button", class: "secondary remove" }, "Remove");
    remove.setAttribute("aria-label", `Remove ${d.title}`);
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove “${d.title}” from the store? The file itself is not deleted.`)) return;
      const response = await fetch(`/api/documents?source=${encodeURIComponent(d.source)}`, { method: "DELETE" });
      say(response.ok ? `Removed ${d.title}.` : `Error: ${await errorText(response)}`, !response.ok);
      refresh();
    });
    actions.append(again, remove);
    row.append(title, el("td", {}, d.lang), el("td", {}, String(d.chunks)), file, actions);
    body.append(row);
  }
  const chunks = docs.reduce((sum, d) => sum + d.chunks, 0);
  $("summary").textContent = `${docs.length} documents, ${chunks} chunks`;
}

function upload(file) {
  // XMLHttpRequest, not fetch: it reports upload progress
  const item = el("li", { class: "upload-item" });
  const bar = el("progress", { max: "100", value: "0", "aria-label": `Uploading ${file.name}` });
  const text = el("span", {}, ` ${file.name}: uploading…`);
  item.append(bar, text);
  $("uploads").append(item);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/documents?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    xhr.upload.addEventListener("load", () => { bar.value = 100; text.textContent = ` ${file.name}: reading and embedding…`; });
    xhr.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = { error: xhr.statusText }; }
      if (xhr.status >= 200 && xhr.status < 300) {
        const warn = data.report.warnings.length ? ` (${data.report.warnings.join("; ")})` : "";
        text.textContent = ` ${file.name}: ${reportText(data.report)}${warn}`;
        item.dataset.state = "done";
      } else {
        text.textContent = ` ${file.name}: ${data.error || xhr.statusText}`;
        text.className = "error";
        text.setAttribute("role", "alert");
        item.dataset.state = "error";
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      text.textContent = ` ${file.name}: the upload failed (connection lost)`;
      item.dataset.state = "error";
      resolve();
    });
    xhr.send(file);
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from($("files").files);
    if (!files.length) {
      say("Choose one or more .txt, .md or .rst files first.", true);
      return;
    }
    $("upload").disabled = true;
    for (const file of files) await upload(file);  // one at a time: the server embeds one at a time anyway
    $("upload").disabled = false;
    $("files").value = "";
    await refresh();
  });
  try {
    const info = await (await fetch("/api/info")).json();
    $("upload-limit").textContent = `Up to ${(info.max_upload / 1048576).toFixed(0)} MiB per file.`;
  } catch (e) { /* refresh() reports problems */ }
  await refresh();
  document.body.dataset.ready = "1";
});
