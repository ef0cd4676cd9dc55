// The web page: draw or upload one character, POST it to /predict/{task}?preview=true, show the
// top-k as bars and the image the model received. Plain DOM, no framework, nothing from elsewhere.
"use strict";

const K = 5;
const TASK_NAMES = { letter: "A letter (A–Z)", digit: "A digit (0–9)", grapheme: "A Bengali grapheme (বাংলা)" };
const HEAD_NAMES = { grapheme_root: "Root", vowel_diacritic: "Vowel sign", consonant_diacritic: "Consonant sign" };
// Friendly text per service error code (app/errors.py); the service's own message follows it.
const ERRORS = {
  no_ink: "No ink found — draw or photograph a darker, larger character.",
  empty_file: "The file is empty — choose another one.",
  payload_too_large: "That file is too large — use a smaller photo.",
  image_too_large: "That image has too many pixels — use a smaller photo or crop it.",
  unsupported_image: "That is not an image the service can read — use a PNG, JPEG, GIF, BMP, TIFF or WebP.",
  unsupported_media_type: "That is not an image the service can read — use a PNG, JPEG, GIF, BMP, TIFF or WebP.",
  unauthorized: "This service needs an API token — enter it below and try again.",
  request_timeout: "The upload took too long — try again, or use a smaller photo.",
  overloaded: "The service is busy — try again in a moment.",
  timeout: "The service is busy — try again in a moment.",
  model_not_ready: "This model is not ready yet — try again shortly.",
  network: "Could not reach the service — check the connection and try again.",
};

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: labels are data
  return node;
}

// --- drawing: pointer events cover mouse, touch and pen -------------------------------------
function clearPad() {
  ctx.fillStyle = "#fff"; // an opaque white sheet, so the upload is plain dark-on-light
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = pad.width / 14;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

function padPoint(event) {
  const box = pad.getBoundingClientRect(); // the canvas is scaled by CSS; map to its pixels
  return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
}

let drawing = false;
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = padPoint(event);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x, y); // a tap leaves a dot
  ctx.stroke();
  event.preventDefault();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = padPoint(event);
  ctx.lineTo(x, y);
  ctx.stroke();
});
for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => (drawing = false));

// --- talking to the service -------------------------------------------------------------------
function setBusy(busy) {
  for (const id of ["recognise", "clear", "file", "camera"]) $(id).disabled = busy;
  $("result").setAttribute("aria-busy", String(busy));
}

function showError(code, message) {
  const box = $("error");
  box.replaceChildren(el("strong", "", ERRORS[code] || "Something went wrong."));
  if (message) box.append(" ", el("span", "detail", `(${message})`));
  box.hidden = false;
  if (code === "unauthorized") $("token-field").hidden = false;
}

async function recognise(blob, filename, sentUrl) {
  const task = $("task").value;
  const form = new FormData();
  form.append("file", blob, filename);
  const headers = {};
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  $("error").hidden = true;
  setBusy(true);
  try {
    const url = `/predict/${encodeURIComponent(task)}?k=${K}&preview=true`;
    const response = await fetch(url, { method: "POST", body: form, headers });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      showError(error.code, error.message || `HTTP ${response.status}`);
      $("result").replaceChildren(el("p", "hint", "No answer for this one."));
      return;
    }
    showResult(body, sentUrl);
  } catch (err) {
    showError("network", `could not reach the service: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

// --- results ----------------------------------------------------------------------------------
const percent = (p) => `${(p * 100).toFixed(1)} %`;
// Bengali.AI's "no sign" class is "0"; a sign alone is written on a dotted circle, as in print.
const shown = (label) => (label === "0" ? "none" : /^\p{M}/u.test(label) ? `\u25CC${label}` : label);

function bars(predictions, className) {
  const list = el("ol", `bars ${className || ""}`);
  for (const { label, probability } of predictions) {
    const item = el("li");
    const bar = el("span", "bar");
    const fill = el("span", "fill");
    fill.style.width = `${Math.max(probability * 100, 0.5)}%`;
    bar.append(fill);
    bar.setAttribute("aria-hidden", "true");
    item.append(el("span", "label", shown(label)), bar, el("span", "pct", percent(probability)));
    list.append(item);
  }
  return list;
}

function figure(src, caption, className) {
  const fig = el("figure");
  const img = el("img", className);
  img.src = src;
  img.alt = caption;
  fig.append(img, el("figcaption", "", caption));
  return fig;
}

function showResult(body, sentUrl) {
  const [best] = body.predictions;
  const out = [];
  const top = el("p", "top");
  top.append(el("span", "glyph", best.label), el("span", "", ` ${percent(best.probability)} sure`));
  out.push(top);

  const seen = el("div", "seen");
  if (sentUrl) seen.append(figure(sentUrl, "You sent", "sent"));
  if (body.preview) {
    const { png_base64: png, width, height } = body.preview;
    seen.append(figure(`data:image/png;base64,${png}`, `The model saw (${width}×${height})`, "preview"));
  }
  out.push(seen);

  out.push(el("h3", "", body.components ? "Best whole graphemes" : "Best answers"), bars(body.predictions));
  if (body.components) {
    const parts = el("div", "parts");
    for (const [head, predictions] of Object.entries(body.components)) {
      const part = el("section", "part");
      part.append(el("h4", "", HEAD_NAMES[head] || head.replace(/_/g, " ")), bars(predictions, "small"));
      parts.append(part);
    }
    out.push(el("h3", "", "Its parts"), parts);
  }
  const ms = body.timing_ms ? ` · ${Math.round(body.timing_ms.total)} ms` : "";
  out.push(el("p", "meta", `Model ${body.model.name} ${body.model.version}${ms}`));
  $("result").replaceChildren(...out);
}

// --- wiring -----------------------------------------------------------------------------------
$("clear").addEventListener("click", clearPad);
$("recognise").addEventListener("click", () => {
  const sent = pad.toDataURL("image/png");
  pad.toBlob((blob) => recognise(blob, "drawing.png", sent), "image/png");
});
let photoUrl = null;
for (const id of ["file", "camera"]) {
  $(id).addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = ""; // choosing the same file again fires `change` again
    if (!file) return;
    if (photoUrl) URL.revokeObjectURL(photoUrl);
    photoUrl = URL.createObjectURL(file);
    recognise(file, file.name, photoUrl);
  });
}

async function loadTasks() {
  const select = $("task");
  try {
    const response = await fetch("/models");
    const { models } = await response.json();
    const known = Object.keys(TASK_NAMES);
    const rank = (task) => (known.includes(task) ? known.indexOf(task) : known.length);
    // New models appear here by themselves, after the ones this page has names for.
    const tasks = [...new Set(models.map((m) => m.task))].sort((a, b) => rank(a) - rank(b));
    select.replaceChildren(...tasks.map((task) => new Option(TASK_NAMES[task] || task, task)));
    select.disabled = tasks.length === 0;
    if (tasks.length === 0) showError("model_not_ready", "no model is loaded");
  } catch (err) {
    showError("network", `could not list the models: ${err.message}`);
  }
}

clearPad();
loadTasks();
