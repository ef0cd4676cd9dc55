// The web page: draw or upload one character, POST it to /predict/{task}?preview=true, show the
// top-k as bars and the image the model received; or, in "Read text" mode, a word or number to
// /read/{task}, shown as text with a box per character. Plain DOM, no framework, nothing from elsewhere.
"use strict";

const K = 5;
const READ_K = 3; // per character: enough to see the alternatives, short enough for a list
// Per task: its name when reading one character, and when reading text.
const TASK_NAMES = {
  letter: ["A letter (A–Z)", "Letters (A–Z)"],
  digit: ["A digit (0–9)", "Digits (0–9)"],
  grapheme: ["A Bengali grapheme (বাংলা)", "Bengali graphemes (বাংলা)"],
};
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
  too_many_characters: "Too many separate marks to be text — photograph just the word or number on plain paper.",
  too_many_pieces: "Too much to read in one image — photograph fewer characters at a time.",
  network: "Could not reach the service — check the connection and try again.",
};

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const reading = () => $("mode-text").checked;

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
  ctx.lineWidth = pad.height / 14; // the same pen in both modes: the wide pad is as high
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
  for (const id of ["recognise", "clear", "file", "camera", "mode-char", "mode-text"]) $(id).disabled = busy;
  $("result").setAttribute("aria-busy", String(busy));
}

function showError(code, message) {
  const box = $("error");
  box.replaceChildren(el("strong", "", ERRORS[code] || "Something went wrong."));
  if (message) box.append(" ", el("span", "detail", `(${message})`));
  box.hidden = false;
  if (code === "unauthorized") $("token-field").hidden = false;
  reveal();
}

// On a phone, and in read mode, the answer panel is under the input: bring it into view.
function reveal() {
  const panel = $("result").closest(".panel");
  if (panel.getBoundingClientRect().top > innerHeight * 0.75) panel.scrollIntoView({ behavior: "smooth" });
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
    const read = reading();
    const path = encodeURIComponent(task);
    const url = read ? `/read/${path}?k=${READ_K}` : `/predict/${path}?k=${K}&preview=true`;
    const response = await fetch(url, { method: "POST", body: form, headers });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      showError(error.code, error.message || `HTTP ${response.status}`);
      $("result").replaceChildren(el("p", "hint", "No answer for this one."));
      return;
    }
    (read ? showText : showResult)(body, sentUrl);
  } catch (err) {
    showError("network", `could not reach the service: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

// --- results ----------------------------------------------------------------------------------
const percent = (p) => `${(p * 100).toFixed(1)} %`;
// A sign alone is written on a dotted circle, as in print.
const shown = (label) => (/^\p{M}/u.test(label) ? `\u25CC${label}` : label);
// Bengali.AI's "no sign" class of a grapheme's parts is "0" (for the digit model, "0" is zero).
const shownPart = (label) => (label === "0" ? "none" : shown(label));

function bars(predictions, className, show = shown) {
  const list = el("ol", `bars ${className || ""}`);
  for (const { label, probability } of predictions) {
    const item = el("li");
    const bar = el("span", "bar");
    const fill = el("span", "fill");
    fill.style.width = `${Math.max(probability * 100, 0.5)}%`;
    bar.append(fill);
    bar.setAttribute("aria-hidden", "true");
    item.append(el("span", "label", show(label)), bar, el("span", "pct", percent(probability)));
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
      const name = HEAD_NAMES[head] || head.replace(/_/g, " ");
      part.append(el("h4", "", name), bars(predictions, "small", shownPart));
      parts.append(part);
    }
    out.push(el("h3", "", "Its parts"), parts);
  }
  out.push(meta(body));
  $("result").replaceChildren(...out);
  reveal();
}

function meta(body) {
  const ms = body.timing_ms ? ` · ${Math.round(body.timing_ms.total)} ms` : "";
  return el("p", "meta", `Model ${body.model.name} ${body.model.version}${ms}`);
}

// Read mode: the text, what was sent with a box per character, and each character's top-k.
function showText(body, sentUrl) {
  const chars = body.characters;
  const guess = (c) => (c.rejected ? "?" : c.predictions[0].label);
  const text = el("p", "read-text");
  let at = 0; // walk `text`: the spaces and line breaks between characters are only there
  for (const c of chars) {
    const gap = body.text.slice(at).match(/^\s*/)[0];
    if (gap) text.append(gap);
    const span = el("span", c.rejected ? "rejected" : "", guess(c));
    if (c.rejected) span.title = `Not sure (best guess ${shown(c.predictions[0].label)})`;
    text.append(span);
    at += gap.length + guess(c).length;
  }
  if (!chars.length) text.replaceChildren(el("span", "hint", "No characters found."));

  const view = el("div", "read-view");
  const img = el("img", "sent");
  img.src = sentUrl;
  img.alt = `What you sent, with a box around each of the ${chars.length} characters found`;
  const boxes = el("div", "boxes");
  boxes.setAttribute("aria-hidden", "true");
  view.append(img, boxes);
  // Boxes are in the image's own pixels: placed in percent, they follow its displayed size.
  img.decode().then(() => {
    const [w, h] = [img.naturalWidth, img.naturalHeight];
    img.style.width = `${(16 * w) / h}rem`; // 16rem high, small photos too; CSS caps the width
    for (const c of chars) {
      const [x, y, bw, bh] = c.box;
      const box = el("div", c.rejected ? "box rejected" : "box");
      Object.assign(box.style, {
        left: `${(x / w) * 100}%`, top: `${(y / h) * 100}%`,
        width: `${(bw / w) * 100}%`, height: `${(bh / h) * 100}%`,
      });
      box.append(el("span", "", shown(guess(c))));
      boxes.append(box);
    }
  }, () => {}); // an image the browser cannot show has no boxes to draw on it

  const list = el("ol", "chars");
  for (const c of chars) {
    const item = el("li", c.rejected ? "rejected" : "");
    item.append(el("span", "label", shown(guess(c))));
    if (c.rejected) item.append(el("span", "visually-hidden", " (not sure)"));
    const alts = c.predictions.map((p) => `${shown(p.label)} ${percent(p.probability)}`).join(" · ");
    item.append(el("span", "alts", alts));
    list.append(item);
  }
  const out = [text, view];
  if (chars.length) out.push(el("h3", "", `Each character, best ${READ_K} answers`), list);
  out.push(meta(body));
  $("result").replaceChildren(...out);
  reveal();
}

// --- wiring -----------------------------------------------------------------------------------
// Read mode widens the pad (several characters on a line); resizing a canvas clears it.
function setMode() {
  const read = reading();
  document.body.classList.toggle("reading", read);
  pad.width = read ? 700 : 280;
  const what = read ? "a word or number" : "one character";
  pad.setAttribute("aria-label", `Drawing area: draw ${what} with the mouse, a finger or a pen`);
  clearPad();
  for (const option of $("task").options) {
    const names = TASK_NAMES[option.value];
    if (names) option.text = names[read ? 1 : 0];
  }
  $("result").replaceChildren(el("p", "hint", `Draw or upload ${what} to see the answer here.`));
  $("error").hidden = true;
}
for (const id of ["mode-char", "mode-text"]) $(id).addEventListener("change", setMode);
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
    const name = (task) => (TASK_NAMES[task] || [task, task])[reading() ? 1 : 0];
    select.replaceChildren(...tasks.map((task) => new Option(name(task), task)));
    select.disabled = tasks.length === 0;
    if (tasks.length === 0) showError("model_not_ready", "no model is loaded");
  } catch (err) {
    showError("network", `could not list the models: ${err.message}`);
  }
}

setMode(); // the browser may restore the "Read text" choice on reload
loadTasks();
