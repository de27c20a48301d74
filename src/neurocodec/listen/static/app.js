"use strict";
// The rater's side of the MUSHRA test: training page, one page per trial, end page.
// The token comes from the link's fragment (/#TOKEN) and goes out only in the Authorization header.

const GRADES = [[80, "Excellent"], [60, "Good"], [40, "Fair"], [20, "Poor"], [0, "Bad"]];
const token = decodeURIComponent(location.hash.slice(1));
const main = document.getElementById("main");
let ctx = null;
let player = null;
let tick = null;

function showError(msg) {
  const e = document.getElementById("error");
  e.textContent = msg; e.hidden = !msg;
}

class HttpError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function api(method, path, body) {
  const opts = {method, headers: {"Authorization": "Bearer " + token}, cache: "no-store"};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch("/api/rater" + path, opts);
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new HttpError(r.status, msg);
  }
  if (r.status === 204) return null;
  const type = r.headers.get("Content-Type") || "";
  return type.startsWith("application/json") ? r.json() : r.arrayBuffer();
}

function grade(v) { for (const [lo, name] of GRADES) if (v >= lo) return name; return "Bad"; }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);  // strings become text nodes
  return e;
}

function audioContext(rate) {
  if (ctx && ctx.sampleRate === rate) return ctx;
  if (ctx) ctx.close();
  try { ctx = new AudioContext({sampleRate: rate, latencyHint: "interactive"}); }
  catch (e) { ctx = new AudioContext({latencyHint: "interactive"}); }  // the browser resamples
  return ctx;
}

async function loadBuffers(k, letters, rate) {
  const c = audioContext(rate);
  const keys = ["ref", ...letters];
  const bufs = await Promise.all(keys.map(async key => c.decodeAudioData(await api("GET", `/trials/${k}/audio/${key}`))));
  const out = {};
  keys.forEach((key, i) => { out[key] = bufs[i]; });
  return out;
}

// Builds the player UI for one trial; returns {played: Set, sliders: {letter: input}}.
function buildPlayer(trial, buffers, rating, onPlayed, onRate) {
  if (player) player.close();
  if (tick) cancelAnimationFrame(tick);
  const frag = document.getElementById("tpl-player").content.cloneNode(true);
  const root = frag.querySelector(".player");
  player = new MushraPlayer(ctx, buffers);
  window.mushraPlayer = player;  // for the browser test's checks
  const played = new Set((trial.draft && trial.draft.played) || []);
  const sliders = {};
  const buttons = {ref: root.querySelector("#play-ref")};
  const stimuli = root.querySelector("#stimuli");
  for (const L of trial.letters) {
    const col = el("div", {class: "stim"});
    const value = trial.draft && trial.draft.ratings && trial.draft.ratings[L] !== undefined ? trial.draft.ratings[L] : 0;
    if (rating) {
      const s = el("input", {type: "range", min: "0", max: "100", step: "1", value: String(value), id: `slider-${L}`,
                              "aria-label": `rating of ${L}`});
      const out = el("div", {class: "value", id: `value-${L}`}, String(value));
      const name = el("div", {class: "hint"}, grade(value));
      s.addEventListener("input", () => { out.textContent = s.value; name.textContent = grade(+s.value); onRate(); });
      col.append(out, s, name);
      sliders[L] = s;
    }
    const b = el("button", {type: "button", class: "stim-play", "data-letter": L, id: `play-${L}`, title: `Play ${L}`}, L);
    if (played.has(L)) b.classList.add("played");
    col.append(b);
    buttons[L] = b;
    stimuli.append(col);
  }
  if (!rating) root.querySelector(".scalecol").remove();
  const select = key => {
    player.play(key).then(() => {
      if (key !== "ref" && !played.has(key)) { played.add(key); buttons[key].classList.add("played"); onPlayed(); }
    });
  };
  for (const [key, b] of Object.entries(buttons)) b.addEventListener("click", () => select(key));
  root.querySelector("#stop").addEventListener("click", () => player.stop());
  const timeline = root.querySelector("#timeline"), region = root.querySelector("#region"),
        head = root.querySelector("#playhead"), time = root.querySelector("#time");
  const ls = root.querySelector("#loop-start"), le = root.querySelector("#loop-end"),
        loopText = root.querySelector("#loop-text");
  const d = player.duration;
  const drawRegion = () => {
    region.style.left = `${100 * player.loopStart / d}%`;
    region.style.width = `${100 * (player.loopEnd - player.loopStart) / d}%`;
    loopText.textContent = `${player.loopStart.toFixed(2)}–${player.loopEnd.toFixed(2)} s`;
  };
  const onLoop = () => {
    if (!player.setLoop(d * ls.value / 1000, d * le.value / 1000)) {
      ls.value = Math.round(1000 * player.loopStart / d); le.value = Math.round(1000 * player.loopEnd / d);
    }
    drawRegion();
  };
  ls.addEventListener("input", onLoop); le.addEventListener("input", onLoop);
  timeline.addEventListener("click", ev => {
    const r = timeline.getBoundingClientRect();
    player.seek(d * (ev.clientX - r.left) / r.width);
  });
  player.onchange = () => {
    for (const [key, b] of Object.entries(buttons)) b.classList.toggle("active", player.playing && player.selected === key);
  };
  const frame = () => {
    const p = player.position();
    head.style.left = `${100 * p / d}%`;
    time.textContent = `${p.toFixed(2)} s`;
    tick = requestAnimationFrame(frame);
  };
  drawRegion();
  frame();
  document.onkeydown = ev => {
    if (ev.target.tagName === "INPUT" && ev.target.type === "range" && ev.key !== " ") return;
    if (ev.key === " ") { ev.preventDefault(); player.playing ? player.stop() : select(player.selected || "ref"); }
    else if (ev.key === "r" || ev.key === "R") select("ref");
    else if (/^[1-9]$/.test(ev.key) && trial.letters[+ev.key - 1]) select(trial.letters[+ev.key - 1]);
  };
  return {root, played, sliders};
}

async function showTraining(state) {
  main.replaceChildren(
    el("h2", {}, "Training"),
    el("p", {class: "hint"}, "Listen to every item: the reference and all versions behind the letters, to learn the " +
      "range of quality you will rate. Switching between versions keeps the position. Nothing is rated here."),
  );
  const pick = el("select", {id: "training-item"});
  for (let k = 0; k < state.trials; k++) pick.append(el("option", {value: String(k)}, `Item ${k + 1}`));
  const slot = el("div");
  const start = el("button", {type: "button", class: "primary", id: "start-test"}, "Start the test");
  const itemLine = el("p", {}, "Item: ");
  itemLine.append(pick);
  main.append(itemLine, slot, el("div", {class: "actions"}, start));
  const load = async () => {
    const k = +pick.value;
    const trial = await api("GET", `/trials/${k}`);
    const buffers = await loadBuffers(k, trial.letters, trial.sample_rate);
    const {root} = buildPlayer(trial, buffers, false, () => {}, () => {});
    slot.replaceChildren(root);
  };
  pick.addEventListener("change", () => load().catch(e => showError(e.message)));
  start.addEventListener("click", async () => {
    try { if (player) player.close(); await api("POST", "/training"); await route(); }
    catch (e) { showError(e.message); }
  });
  await load();
}

async function showTrial(state) {
  const k = state.next_trial;
  const trial = await api("GET", `/trials/${k}`);
  document.getElementById("where").textContent = `Trial ${k + 1} of ${state.trials}`;
  main.replaceChildren(el("p", {}, "Loading audio…"));
  const buffers = await loadBuffers(k, trial.letters, trial.sample_rate);
  const began = performance.now();
  const next = el("button", {type: "button", class: "primary", id: "next", disabled: ""},
                  k + 1 < state.trials ? "Next trial" : "Finish");
  const hint = el("span", {class: "hint", id: "next-hint"});
  let saveTimer = null;
  let ui = null;
  const body = () => ({
    nonce: trial.nonce, played: [...ui.played],
    ratings: Object.fromEntries(Object.entries(ui.sliders).map(([L, s]) => [L, +s.value])),
  });
  const saveDraft = () => {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => api("PUT", `/trials/${k}/draft`, body()).catch(e => showError(e.message)), 400);
  };
  const update = () => {
    const missing = trial.letters.filter(L => !ui.played.has(L));
    next.disabled = missing.length > 0;
    hint.textContent = missing.length ? `Play every stimulus first (not yet: ${missing.join(", ")})` : "";
  };
  ui = buildPlayer(trial, buffers, true, () => { update(); saveDraft(); }, saveDraft);
  main.replaceChildren(
    el("p", {class: "hint"}, "Rate each version against the reference on the scale: 100 means no audible difference. " +
      "One of the versions is the reference itself. Keys: R reference, 1–9 versions, space play/stop."),
    ui.root, el("div", {class: "actions"}, next, hint));
  update();
  next.addEventListener("click", async () => {
    next.disabled = true;
    clearTimeout(saveTimer);
    try {
      await api("POST", `/trials/${k}`, {...body(), seconds: (performance.now() - began) / 1000});
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 409)) { showError(e.message); update(); return; }
      // 409: this trial is already stored (e.g. a second tab); continue from the server's state
    }
    showError("");
    player.close();
    await route();
  });
}

function showEnd(state) {
  document.getElementById("where").textContent = "";
  main.replaceChildren(el("h2", {id: "done"}, "Thank you!"),
    el("p", {}, `All ${state.trials} trials are stored. You can close this page.`));
}

async function route() {
  const state = await api("GET", "");
  document.getElementById("title").textContent = state.title;
  if (state.finished) return showEnd(state);
  if (!state.training_done) return showTraining(state);
  return showTrial(state);
}

if (!token) {
  main.replaceChildren(el("p", {}, "Open this test with the personal link you were given."));
} else {
  route().catch(e => showError(e.status === 401 ? "This link is not valid." : e.message));
}

// a different link pasted into the same tab: start over with its token
window.addEventListener("hashchange", () => location.reload());
