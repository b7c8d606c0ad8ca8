// The dlvr_jax Playground page: one WebSocket session with the local server
// (dlvr_jax.playground), the controls of the TensorFlow Playground and more,
// the whole configuration in the URL fragment. Plain ES module, no library.

import {
  CLASS_COLOURS, diverging, drawGradientHeatmap, drawThumbnail, drawLossChart, drawPoints,
  drawSweepHeatmap, maxAbs, paintClasses, paintGrid, paintValues, rgb,
} from "./draw.js";
import { decodeSnapshot } from "./snapshot.js";

const $ = (id) => document.getElementById(id);

// The TF Playground's choices for its select boxes.
const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REGULARIZATION_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const DROPOUTS = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
const FEATURE_NAMES = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"];
const FEATURE_LABELS = {
  x1: "X\u2081", x2: "X\u2082", "x1^2": "X\u2081\u00b2", "x2^2": "X\u2082\u00b2",
  "x1*x2": "X\u2081X\u2082", "sin(x1)": "sin(X\u2081)", "sin(x2)": "sin(X\u2082)",
};
// The pace: epochs per second (60: one per animation frame, as the TF Playground); 0: no pace.
const SPEEDS = [60, 150, 500, 2000, 0];
const SPEED_LABELS = { 60: "1 epoch per frame", 0: "as fast as it goes" };
const PATIENCES = [0, 25, 50, 100, 200, 500];
const SWEEP_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
const PAGE_KEYS = { showTest: false, discretize: false }; // fragment keys kept by the page

const state = {
  socket: null,
  config: null, // the server's effective configuration
  defaults: null,
  options: null,
  limits: null,
  data: null,
  playing: false,
  showTest: false,
  discretize: false,
  pending: null, // newest snapshot not drawn yet
  frameRequested: false,
  last: null, // last drawn snapshot
  trainLosses: [],
  testLosses: [],
  grad: { bins: [], open: null, stride: 1 }, // gradient norms, binned
  gradLayers: 0,
  network: null, // built DOM of the network
  rawInputs: null, // number of raw input columns of an upload without a 2-D grid
  hover: null,
  featureMaps: null,
  featureKey: "",
  exportWanted: null,
  playPressedAt: null,
  playEpoch: 0,
  fragment: {},
  note: "", // shown after the status (what was uploaded)
  compiling: null, // performance.now() - seconds when the server said it compiles, or null
  compilingTimer: null,
  stopped: null, // the status's stopped (early stop), or null
  uploadName: "",
};

const stats = {
  snapshots: 0, // drawn
  received: 0,
  firstSnapshotMs: null,
  lastEpoch: 0,
  connected: false,
  playing: false,
  epochsPerSecond: 0,
  drawMs: 0, // time to draw the last snapshot
  compiling: false, // the server compiles the network's program (Play waits for it)
  compiles: 0, // compiling states seen
};
window.playgroundStats = stats;
window.playgroundExport = null; // the last export reply (script, checkpoint, epoch)
window.playgroundSweep = null; // the last sweep reply

// ---------------------------------------------------------------------------
// URL fragment: the whole configuration, like the TF Playground.

function parseFragment() {
  const out = {};
  const text = location.hash.replace(/^#/, "");
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
    out[key] = value;
  }
  return out;
}

/** Converts fragment strings to the types of the defaults; unknown keys are dropped. */
function typedConfig(raw, defaults) {
  const config = {};
  for (const [key, text] of Object.entries(raw)) {
    if (!(key in defaults)) continue;
    const like = defaults[key];
    if (Array.isArray(like)) {
      const items = text === "" ? [] : text.split(",");
      config[key] = key === "hidden" ? items.map(Number) : items;
    } else if (typeof like === "boolean") {
      config[key] = text === "true" || text === "1";
    } else if (typeof like === "number") {
      config[key] = Number(text);
    } else {
      config[key] = text;
    }
  }
  if (config.dataset === "upload") delete config.dataset; // an upload is not in the URL
  return config;
}

function writeFragment() {
  if (!state.config) return;
  const parts = [];
  const add = (k, v) => parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  for (const [key, value] of Object.entries(state.config)) {
    add(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  add("showTest", String(state.showTest));
  add("discretize", String(state.discretize));
  history.replaceState(null, "", `${location.pathname}${location.search}#${parts.join("&")}`);
}

// ---------------------------------------------------------------------------
// The socket.

function connect() {
  const token = new URLSearchParams(location.search).get("token") || "";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket.binaryType = "arraybuffer";
  state.socket = socket;
  socket.addEventListener("open", () => {
    stats.connected = true;
    showStatus();
  });
  socket.addEventListener("close", (event) => {
    stats.connected = false;
    stats.playing = false;
    state.playing = false;
    onCompiling(null);
    showStatus(event.reason ? `disconnected (${event.code}: ${event.reason})` : "disconnected");
    renderPlay();
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") onMessage(JSON.parse(event.data));
    else onSnapshot(decodeSnapshot(event.data));
  });
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(message));
  }
}

function sendConfig(partial) {
  setError("");
  send({ type: "config", config: partial });
}

function onMessage(msg) {
  switch (msg.type) {
    case "hello": {
      state.defaults = msg.config;
      state.options = msg.options || {};
      state.limits = msg.limits || {};
      fillOptions();
      applyConfig(msg.config);
      const wanted = typedConfig(state.fragment, msg.config);
      const changed = {};
      for (const [k, v] of Object.entries(wanted)) {
        if (JSON.stringify(v) !== JSON.stringify(msg.config[k])) changed[k] = v;
      }
      if (Object.keys(changed).length) send({ type: "config", config: changed });
      else writeFragment();
      break;
    }
    case "config":
      if (msg.reset) clearHistory();
      if (msg.config.dataset !== "upload") state.note = "";
      applyConfig(msg.config);
      writeFragment();
      break;
    case "data":
      state.data = msg;
      state.featureKey = "";
      requestDraw();
      break;
    case "status":
      state.playing = !!msg.playing;
      stats.playing = state.playing;
      onCompiling(state.playing && typeof msg.compiling === "number" ? msg.compiling : null);
      state.stopped = msg.stopped || null;
      renderPlay();
      showStatus();
      break;
    case "upload":
      if (msg.ok) {
        setError("");
        const names = msg.classNames || [];
        const named = names.some((name, i) => name !== String(i)) ? ` (${names.join(", ")})` : "";
        const kind =
          msg.task === "classification" ? `${msg.classes} classes${named}` : "regression";
        state.note = `${state.uploadName}: ${msg.rows} rows, ${msg.inputs} inputs, ${kind}`;
        showStatus();
      }
      break;
    case "export":
      onExport(msg);
      break;
    case "sweep":
      onSweep(msg);
      break;
    case "diverged":
      state.playing = false;
      stats.playing = false;
      renderPlay();
      setError(msg.message || `diverged at epoch ${msg.epoch}`);
      break;
    case "error":
      setError(msg.message || msg.code || "error");
      if (msg.code === "too_many_sessions") showStatus("too many sessions");
      $("sweep").disabled = false;
      break;
    default:
      break;
  }
}

function setError(text) {
  $("error").textContent = text;
}

function onCompiling(seconds) {
  if (seconds === null) {
    state.compiling = null;
    stats.compiling = false;
    clearInterval(state.compilingTimer);
    state.compilingTimer = null;
    return;
  }
  if (state.compiling === null) stats.compiles += 1;
  state.compiling = performance.now() - seconds * 1000;
  stats.compiling = true;
  if (state.compilingTimer === null) state.compilingTimer = setInterval(() => showStatus(), 500);
}

function playingText() {
  if (state.compiling !== null) {
    const seconds = Math.floor((performance.now() - state.compiling) / 1000);
    return `connected · compiling the network… ${seconds} s (training starts when it is ready)`;
  }
  if (state.playing) return "connected · playing";
  const s = state.stopped;
  if (s && s.reason === "patience") {
    return `connected · stopped early: the test loss has not improved since epoch ${s.bestEpoch} (${fmt(s.bestTestLoss)})`;
  }
  return "connected · paused";
}

function showStatus(text) {
  const base = stats.connected ? playingText() : "disconnected";
  const note = text || state.note;
  $("status").textContent = note ? `${base} — ${note}` : base;
}

// ---------------------------------------------------------------------------
// Controls.

function fillSelect(id, values, labelOf = String) {
  const select = $(id);
  select.replaceChildren();
  for (const value of values) {
    const option = document.createElement("option");
    option.value = String(value);
    option.textContent = labelOf(value);
    select.append(option);
  }
}

function setSelect(id, value) {
  const select = $(id);
  const text = String(value);
  if (![...select.options].some((o) => o.value === text)) {
    const option = document.createElement("option");
    option.value = text;
    option.textContent = text;
    select.append(option);
  }
  select.value = text;
}

function fillOptions() {
  const o = state.options;
  fillSelect("dataset", o.datasets || []);
  const thumbnails = $("dataset-thumbnails");
  thumbnails.replaceChildren();
  for (const name of o.datasets || []) {
    const canvas = document.createElement("canvas");
    canvas.width = 48;
    canvas.height = 48;
    canvas.className = "thumbnail";
    canvas.title = name;
    canvas.dataset.name = name;
    if (!drawThumbnail(canvas, name)) continue;
    canvas.addEventListener("click", () => {
      $("dataset").value = name;
      $("dataset").dispatchEvent(new Event("change"));
    });
    thumbnails.append(canvas);
  }
  fillSelect("activation", o.activations || []);
  fillSelect("optimizer", o.optimizers || []);
  fillSelect("learning-rate", LEARNING_RATES);
  fillSelect("regularization-rate", REGULARIZATION_RATES);
  fillSelect("dropout", DROPOUTS);
  fillSelect("speed", SPEEDS, (v) => SPEED_LABELS[v] || `${v} epochs/s`);
  fillSelect("patience", PATIENCES, (v) => (v ? `after ${v} epochs` : "never"));
  $("batch-size").max = String(Math.min(limit("batchSize", 1, 30), 30));
}

function applyConfig(config) {
  const old = state.config;
  state.config = config;
  setSelect("dataset", config.dataset);
  for (const canvas of $("dataset-thumbnails").children) {
    canvas.classList.toggle("selected", canvas.dataset.name === config.dataset);
  }
  $("noise").value = config.noise;
  $("noise-value").textContent = config.noise;
  $("train-ratio").value = config.trainRatio;
  $("train-ratio-value").textContent = config.trainRatio;
  if (config.batchSize > Number($("batch-size").max)) $("batch-size").max = String(config.batchSize);
  $("batch-size").value = config.batchSize;
  $("batch-size-value").textContent = config.batchSize;
  setSelect("learning-rate", config.learningRate);
  setSelect("activation", config.activation);
  $("regularization").value = config.regularization;
  setSelect("regularization-rate", config.regularizationRate);
  $("problem").value = config.problem;
  setSelect("optimizer", config.optimizer);
  const losses = (state.options.losses && state.options.losses[config.problem]) || [config.loss];
  fillSelect("loss", losses);
  setSelect("loss", config.loss);
  setSelect("dropout", config.dropout);
  $("residual").checked = !!config.residual;
  if ("speed" in config) setSelect("speed", config.speed);
  if ("patience" in config) setSelect("patience", config.patience);
  document.body.classList.toggle("regression", config.problem === "regression");
  $("show-test").checked = state.showTest;
  $("discretize").checked = state.discretize;
  const shape = (c) => c && JSON.stringify([c.hidden, c.features, c.dataset === "upload"]);
  if (!state.network || shape(old) !== shape(config)) buildNetwork();
}

function bindControls() {
  const onChange = (id, make) => $(id).addEventListener("change", () => sendConfig(make($(id))));
  // The server derives the problem type (and the regression loss) from the dataset.
  onChange("dataset", (el) => ({ dataset: el.value }));
  onChange("noise", (el) => ({ noise: Number(el.value) }));
  onChange("train-ratio", (el) => ({ trainRatio: Number(el.value) }));
  onChange("batch-size", (el) => ({ batchSize: Number(el.value) }));
  for (const [id, label] of [["noise", "noise-value"], ["train-ratio", "train-ratio-value"], ["batch-size", "batch-size-value"]]) {
    $(id).addEventListener("input", () => { $(label).textContent = $(id).value; });
  }
  onChange("learning-rate", (el) => ({ learningRate: Number(el.value) }));
  onChange("activation", (el) => ({ activation: el.value }));
  onChange("regularization", (el) => ({ regularization: el.value }));
  onChange("regularization-rate", (el) => ({ regularizationRate: Number(el.value) }));
  // The server switches to circle or plane when the dataset does not fit the problem.
  onChange("problem", (el) => ({ problem: el.value }));
  onChange("optimizer", (el) => ({ optimizer: el.value }));
  onChange("loss", (el) => ({ loss: el.value }));
  onChange("dropout", (el) => ({ dropout: Number(el.value) }));
  onChange("residual", (el) => ({ residual: el.checked }));
  onChange("speed", (el) => ({ speed: Number(el.value) }));
  onChange("patience", (el) => ({ patience: Number(el.value) }));

  $("play").addEventListener("click", () => {
    if (state.playing) {
      send({ type: "pause" });
    } else {
      state.playPressedAt = performance.now();
      state.playEpoch = stats.lastEpoch;
      stats.firstSnapshotMs = null;
      send({ type: "play" });
    }
  });
  $("step").addEventListener("click", () => send({ type: "step" }));
  $("reset").addEventListener("click", () => {
    clearHistory();
    send({ type: "reset" });
  });
  $("regenerate").addEventListener("click", () => {
    clearHistory();
    send({ type: "regenerate" });
  });
  $("add-layer").addEventListener("click", () => {
    const hidden = state.config.hidden.slice();
    const max = layerLimit();
    if (hidden.length >= max) return setError(`at most ${max} hidden layers`);
    hidden.push(hidden.length ? hidden[hidden.length - 1] : 2);
    sendConfig({ hidden });
  });
  $("remove-layer").addEventListener("click", () => {
    const hidden = state.config.hidden.slice();
    if (!hidden.length) return;
    hidden.pop();
    sendConfig({ hidden });
  });
  $("show-test").addEventListener("change", () => {
    state.showTest = $("show-test").checked;
    writeFragment();
    redrawOutput();
  });
  $("discretize").addEventListener("change", () => {
    state.discretize = $("discretize").checked;
    writeFragment();
    redrawOutput();
  });
  $("upload").addEventListener("change", async () => {
    const input = $("upload");
    const file = input.files && input.files[0];
    if (!file) return;
    setError("");
    const csv = await file.text();
    clearHistory();
    state.uploadName = file.name;
    send({ type: "upload", name: file.name, csv });
    input.value = "";
  });
  $("export-checkpoint").addEventListener("click", () => {
    state.exportWanted = "checkpoint";
    send({ type: "export" });
  });
  $("export-script").addEventListener("click", () => {
    state.exportWanted = "script";
    send({ type: "export" });
  });
  $("sweep").addEventListener("click", () => {
    const epochs = clampInt($("sweep-epochs").value, 1, 2000, 100);
    const seeds = clampInt($("sweep-seeds").value, 1, 8, 4);
    $("sweep").disabled = true;
    $("sweep-summary").textContent = `sweeping ${SWEEP_RATES.length} learning rates × ${seeds} seeds, ${epochs} epochs…`;
    send({ type: "sweep", learningRates: SWEEP_RATES, seeds, epochs });
  });
}

function limit(name, index, fallback) {
  const range = state.limits && state.limits[name];
  return Array.isArray(range) && Number.isFinite(range[index]) ? range[index] : fallback;
}

function layerLimit() {
  return limit("hiddenLayers", 1, 16);
}

function widthLimit() {
  return limit("hiddenWidth", 1, 256);
}

function clampInt(text, lo, hi, fallback) {
  const n = Math.round(Number(text));
  return Number.isFinite(n) ? Math.max(lo, Math.min(hi, n)) : fallback;
}

function setWidth(layer, width) {
  const hidden = state.config.hidden.slice();
  if (String(width).trim() === "") return; // a cleared box: wait for a number
  const w = clampInt(width, 1, widthLimit(), hidden[layer]);
  if (w === hidden[layer]) return;
  hidden[layer] = w;
  sendConfig({ hidden });
}

function renderPlay() {
  const button = $("play");
  button.textContent = state.playing ? "\u275A\u275A" : "\u25B6";
  button.classList.toggle("playing", state.playing);
  stats.playing = state.playing;
}

// ---------------------------------------------------------------------------
// Exports and the sweep.

function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function onExport(msg) {
  window.playgroundExport = { script: msg.script, scriptName: msg.scriptName, checkpoint: msg.checkpoint, checkpointName: msg.checkpointName, epoch: msg.epoch };
  if (state.exportWanted === "script") {
    download(msg.scriptName || "playground_run.py", new Blob([msg.script], { type: "text/x-python" }));
  } else if (state.exportWanted === "checkpoint") {
    const bytes = Uint8Array.from(atob(msg.checkpoint), (c) => c.charCodeAt(0));
    download(msg.checkpointName || "playground.ckpt", new Blob([bytes], { type: "application/octet-stream" }));
  }
  state.exportWanted = null;
  showStatus(`exported epoch ${msg.epoch}`);
}

function onSweep(msg) {
  window.playgroundSweep = msg;
  $("sweep").disabled = false;
  drawSweepHeatmap($("sweep-heatmap"), msg);
  let best = -1;
  msg.mean.forEach((m, i) => {
    if (Number.isFinite(m) && (best < 0 || m < msg.mean[best])) best = i;
  });
  $("sweep-summary").textContent = best < 0
    ? `every run diverged (${msg.seeds} seeds, ${msg.epochs} epochs)`
    : `best learning rate ${msg.learningRates[best]}: mean test loss ${fmt(msg.mean[best])} ± ${fmt(msg.std[best])} (${msg.seeds} seeds, ${msg.epochs} epochs)`;
}

// ---------------------------------------------------------------------------
// The network: feature nodes, hidden neurons (canvases) and links (SVG paths).

const SVG = "http://www.w3.org/2000/svg";

function inputNames() {
  if (state.rawInputs !== null) {
    return Array.from({ length: state.rawInputs }, (_, i) => `column ${i}`);
  }
  return FEATURE_NAMES;
}

function buildNetwork() {
  const container = $("network");
  for (const el of [...container.children]) if (el.id !== "links") el.remove();
  const svg = $("links");
  svg.replaceChildren();
  const config = state.config;
  const hidden = config.hidden;
  const names = inputNames();
  const rawInputs = names !== FEATURE_NAMES;
  const active = rawInputs ? names : config.features;
  $("num-layers").textContent = String(hidden.length);
  $("layers-label").textContent = hidden.length === 1 ? "hidden layer" : "hidden layers";

  const biggest = Math.max(names.length, ...hidden, 1);
  const size = biggest <= 8 ? 36 : Math.max(8, Math.floor(400 / biggest) - 4);
  const gap = biggest <= 8 ? 12 : 4;
  const top = 56;
  const width = container.clientWidth || 640;
  const columns = hidden.length + 2;
  const colX = (c) => 60 + (c * (width - 110)) / (columns - 1);
  const height = top + biggest * (size + gap) + 20;
  container.style.height = `${height}px`;
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));

  const nodes = []; // nodes[c][i] = {x, y} centres (c = 0: inputs, 1..: hidden)
  // Inputs.
  const inputs = [];
  names.forEach((name, i) => {
    const x = colX(0);
    const y = top + i * (size + gap) + size / 2;
    const node = document.createElement("div");
    node.className = "node feature";
    const on = active.includes(name);
    node.classList.toggle("inactive", !on);
    place(node, x - size / 2, y - size / 2, size);
    const canvas = document.createElement("canvas");
    canvas.width = 40;
    canvas.height = 40;
    canvas.className = "node-canvas";
    node.append(canvas);
    const label = document.createElement("span");
    label.className = "feature-label";
    label.textContent = FEATURE_LABELS[name] || name;
    node.append(label);
    if (!rawInputs) {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "feature-check";
      box.checked = on;
      box.dataset.testid = `feature-${name}`;
      box.title = `use ${name}`;
      box.addEventListener("change", () => toggleFeature(name, box.checked));
      node.append(box);
      canvas.addEventListener("click", () => toggleFeature(name, !box.checked));
    }
    container.append(node);
    inputs.push({ name, x, y, canvas, on });
  });
  nodes.push(inputs.filter((n) => n.on));

  // Hidden layers, each with its header (+/- and the width input).
  const neurons = [];
  hidden.forEach((units, l) => {
    const x = colX(l + 1);
    const header = document.createElement("div");
    header.className = "layer-header";
    header.style.left = `${x - 40}px`;
    header.style.top = "0px";
    const plus = document.createElement("button");
    plus.className = "round-button small";
    plus.textContent = "+";
    plus.title = `one more neuron in layer ${l}`;
    plus.addEventListener("click", () => setWidth(l, state.config.hidden[l] + 1));
    const minus = document.createElement("button");
    minus.className = "round-button small";
    minus.textContent = "\u2212";
    minus.title = `one neuron fewer in layer ${l}`;
    minus.addEventListener("click", () => setWidth(l, state.config.hidden[l] - 1));
    const input = document.createElement("input");
    input.type = "number";
    input.min = "1";
    input.max = String(widthLimit());
    input.value = String(units);
    input.className = "layer-width";
    input.dataset.testid = `layer-${l}-width`;
    input.title = `neurons in layer ${l}`;
    input.addEventListener("change", () => setWidth(l, input.value));
    const label = document.createElement("span");
    label.className = "layer-label";
    label.textContent = units === 1 ? "neuron" : "neurons";
    header.append(plus, minus, input, label);
    container.append(header);
    const column = [];
    for (let u = 0; u < units; u++) {
      const y = top + u * (size + gap) + size / 2;
      const node = document.createElement("div");
      node.className = "node neuron";
      place(node, x - size / 2, y - size / 2, size);
      const canvas = document.createElement("canvas");
      canvas.width = 40;
      canvas.height = 40;
      canvas.className = "node-canvas";
      canvas.dataset.testid = `neuron-${l}-${u}`;
      node.append(canvas);
      node.addEventListener("mouseenter", () => { state.hover = { layer: l, unit: u }; node.classList.add("hovered"); redrawOutput(); });
      node.addEventListener("mouseleave", () => { state.hover = null; node.classList.remove("hovered"); redrawOutput(); });
      container.append(node);
      column.push({ x, y, canvas });
    }
    neurons.push(column);
    nodes.push(column);
  });
  // The output: links end at the right edge, next to the output panel.
  const outY = top + size / 2;
  nodes.push([{ x: width - 8, y: outY }]);

  // Links, in order kernel_0 .. kernel_L.
  const links = [];
  const half = size / 2;
  for (let k = 0; k + 1 < nodes.length; k++) {
    const from = nodes[k];
    const to = nodes[k + 1];
    if (from.length * to.length > 4096) { links.push(null); continue; }
    const layer = [];
    for (let i = 0; i < from.length; i++) {
      for (let j = 0; j < to.length; j++) {
        const a = from[i];
        const b = to[j];
        const x1 = a.x + half;
        const x2 = k + 2 === nodes.length ? b.x : b.x - half;
        const mx = (x1 + x2) / 2;
        const path = document.createElementNS(SVG, "path");
        path.setAttribute("d", `M${x1},${a.y} C${mx},${a.y} ${mx},${b.y} ${x2},${b.y}`);
        path.setAttribute("class", "link");
        path.setAttribute("stroke", "#ccc");
        path.setAttribute("stroke-width", "1");
        svg.append(path);
        layer.push({ path, i, j, stroke: "", width: "" });
      }
    }
    links.push(layer);
  }
  state.network = { inputs, neurons, links, size };
  state.featureKey = "";
  if (state.last) drawSnapshot(state.last);
}

function place(el, left, top, size) {
  el.style.left = `${left}px`;
  el.style.top = `${top}px`;
  el.style.width = `${size}px`;
  el.style.height = `${size}px`;
}

function toggleFeature(name, on) {
  const features = FEATURE_NAMES.filter((f) => (f === name ? on : state.config.features.includes(f)));
  if (!features.length) {
    setError("at least one feature must stay on");
    buildNetwork();
    return;
  }
  sendConfig({ features });
}

// ---------------------------------------------------------------------------
// Snapshots: decode on arrival, keep the loss history, draw the newest in a frame.

function clearHistory() {
  state.trainLosses = [];
  state.testLosses = [];
  state.grad = { bins: [], open: null, stride: 1 };
}

function onSnapshot(snap) {
  const h = snap.header;
  stats.received += 1;
  if (h.epoch === 0 || (state.last && h.epoch < state.last.header.epoch)) clearHistory();
  const a = snap.arrays;
  if (a.trainLosses) for (const v of a.trainLosses) state.trainLosses.push(v);
  if (a.testLosses) for (const v of a.testLosses) state.testLosses.push(v);
  if (state.trainLosses.length > MAX_HISTORY) {
    state.trainLosses = halve(state.trainLosses);
    state.testLosses = halve(state.testLosses);
  }
  if (a.gradNorms) {
    const [e, l] = snap.shapes.gradNorms;
    state.gradLayers = l;
    for (let i = 0; i < e; i++) addGradRow(a.gradNorms.subarray(i * l, (i + 1) * l));
  }
  if (state.playPressedAt !== null && h.epoch > state.playEpoch) {
    stats.firstSnapshotMs = performance.now() - state.playPressedAt;
    state.playPressedAt = null;
  }
  state.pending = snap;
  // Taken (decoded, its history kept): the server may send the next one while this
  // waits for its frame; only the newest is drawn.
  send({ type: "ack", epoch: h.epoch });
  requestDraw();
}

// Long runs keep bounded histories: averages of 2^k consecutive epochs.
const MAX_HISTORY = 4000;
const MAX_GRAD_BINS = 600;

function halve(series) {
  const out = [];
  for (let i = 0; i + 1 < series.length; i += 2) out.push((series[i] + series[i + 1]) / 2);
  if (series.length % 2) out.push(series[series.length - 1]);
  return out;
}

function addGradRow(row) {
  const g = state.grad;
  if (!g.open || g.open.n >= g.stride) {
    g.open = { sum: new Float64Array(row.length), n: 0 };
    g.bins.push(g.open);
  }
  for (let k = 0; k < row.length; k++) g.open.sum[k] += row[k];
  g.open.n += 1;
  if (g.bins.length > MAX_GRAD_BINS && g.open.n >= g.stride) {
    const merged = [];
    for (let i = 0; i < g.bins.length; i += 2) {
      const x = g.bins[i];
      const y = g.bins[i + 1];
      if (!y) {
        merged.push(x);
        continue;
      }
      const sum = new Float64Array(x.sum.length);
      for (let k = 0; k < sum.length; k++) sum[k] = x.sum[k] + y.sum[k];
      merged.push({ sum, n: x.n + y.n });
    }
    g.bins = merged;
    g.stride *= 2;
    g.open = null;
  }
}

function gradMeans() {
  return state.grad.bins.map((b) => Array.from(b.sum, (v) => v / b.n));
}

function requestDraw() {
  if (state.frameRequested) return;
  state.frameRequested = true;
  requestAnimationFrame(frame);
}

function frame() {
  state.frameRequested = false;
  const snap = state.pending;
  state.pending = null;
  if (snap) {
    const start = performance.now();
    drawSnapshot(snap);
    stats.drawMs = performance.now() - start;
    stats.snapshots += 1;
    stats.lastEpoch = snap.header.epoch;
    stats.epochsPerSecond = snap.header.epochsPerSecond;
  } else if (state.last) {
    redrawOutput();
  }
}

function duration(seconds) {
  if (seconds >= 1) return `${seconds.toFixed(2)} s`;
  if (seconds >= 1e-3) return `${(seconds * 1e3).toFixed(2)} ms`;
  return `${(seconds * 1e6).toFixed(0)} µs`;
}

function fmt(v) {
  return v === null || v === undefined ? "–" : Number.isFinite(v) ? v.toFixed(3) : String(v);
}

function drawSnapshot(snap) {
  state.last = snap;
  const h = snap.header;
  const a = snap.arrays;
  $("epoch").textContent = String(h.epoch);
  $("train-loss").textContent = fmt(h.trainLoss);
  $("test-loss").textContent = fmt(h.testLoss);
  $("train-accuracy").textContent = fmt(h.trainAccuracy);
  $("test-accuracy").textContent = fmt(h.testAccuracy);
  $("eps").textContent = Number.isFinite(h.epochsPerSecond) ? String(Math.round(h.epochsPerSecond)) : "–";
  $("epoch-time").textContent = Number.isFinite(h.secondsPerEpoch) ? duration(h.secondsPerEpoch) : "–";
  $("train-rmse").textContent = fmt(h.trainRmse);
  $("test-rmse").textContent = fmt(h.testRmse);
  $("train-r2").textContent = fmt(h.trainR2);
  $("test-r2").textContent = fmt(h.testR2);
  const net = state.network;
  if (!net) return;
  const hidden = h.layers.slice(1, -1);
  if (JSON.stringify(hidden) !== JSON.stringify(state.config.hidden)) return; // a stale shape
  const raw = h.grid ? null : h.layers[0];
  if (raw !== state.rawInputs) { // an upload with other than 2 inputs, or back to 2-D data
    state.rawInputs = raw;
    buildNetwork(); // draws this snapshot again
    return;
  }
  const R = h.resolution;
  // Input nodes: the features over the grid, computed here from the domain.
  if (h.grid) {
    const key = `${R}:${h.domain.join(",")}`;
    if (state.featureKey !== key) {
      state.featureKey = key;
      for (const node of net.inputs) {
        const values = featureGrid(node.name, R, h.domain);
        if (values) paintValues(node.canvas, values, R, R, maxAbs(values));
      }
    }
    if (a.neurons) {
      let offset = 0;
      net.neurons.forEach((column) => {
        column.forEach((node) => {
          const values = a.neurons.subarray(offset * R * R, (offset + 1) * R * R);
          paintValues(node.canvas, values, R, R, Math.max(1, maxAbs(values)));
          offset += 1;
        });
      });
    }
  }
  // Links: colour = sign, width ~ |w|.
  net.links.forEach((layer, k) => {
    const kernel = a[`kernel_${k}`];
    if (!layer || !kernel) return;
    const fanOut = snap.shapes[`kernel_${k}`][1];
    for (const link of layer) {
      const w = kernel[link.i * fanOut + (link.j < fanOut ? link.j : 0)];
      // Only what changed: each attribute set restyles the SVG (a repaint per frame).
      const stroke = rgb(diverging(w));
      const width = (1 + Math.min(Math.abs(w), 5) * 1.6).toFixed(1);
      if (link.stroke !== stroke) link.path.setAttribute("stroke", (link.stroke = stroke));
      if (link.width !== width) link.path.setAttribute("stroke-width", (link.width = width));
    }
  });
  drawLossChart($("loss-chart"), state.trainLosses, state.testLosses);
  drawGradientHeatmap($("gradient-heatmap"), gradMeans(), state.gradLayers);
  drawConfusion(a.confusion, snap.shapes.confusion);
  redrawOutput();
}

function featureGrid(name, R, domain) {
  const [xmin, xmax, ymin, ymax] = domain;
  const out = new Float32Array(R * R);
  const f = {
    x1: (x) => x, x2: (x, y) => y, "x1^2": (x) => x * x, "x2^2": (x, y) => y * y,
    "x1*x2": (x, y) => x * y, "sin(x1)": (x) => Math.sin(x), "sin(x2)": (x, y) => Math.sin(y),
  }[name];
  if (!f) return null;
  for (let r = 0; r < R; r++) {
    const y = ymax - ((r + 0.5) * (ymax - ymin)) / R;
    for (let c = 0; c < R; c++) out[r * R + c] = f(xmin + ((c + 0.5) * (xmax - xmin)) / R, y);
  }
  return out;
}

function regressionScale() {
  const d = state.data;
  if (!d || !d.train || !d.train.y) return 1;
  return maxAbs(d.train.y);
}

function pointColour(task, classes) {
  if (task === "regression") {
    const s = regressionScale();
    return (y) => rgb(diverging(y / s));
  }
  if (classes && classes > 2) return (y) => rgb(CLASS_COLOURS[(y | 0) % CLASS_COLOURS.length]);
  return (y) => rgb(diverging(y > 0 ? 1 : -1));
}

function redrawOutput() {
  const canvas = $("output-heatmap");
  const snap = state.last;
  const label = $("hover-label");
  if (!snap) return;
  const h = snap.header;
  const a = snap.arrays;
  const R = h.resolution;
  const ctx = canvas.getContext("2d");
  label.textContent = "";
  if (!h.grid || !a.output) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#666";
    ctx.font = "13px sans-serif";
    ctx.fillText(`${h.layers[0]} input columns: no 2-D map`, 20, 150);
    return;
  }
  drawLegend(h.task, h.classes, regressionScale());
  if (state.hover && a.neurons) {
    const { layer, unit } = state.hover;
    const index = state.config.hidden.slice(0, layer).reduce((s, n) => s + n, 0) + unit;
    const values = a.neurons.subarray(index * R * R, (index + 1) * R * R);
    paintValues(canvas, values, R, R, Math.max(1, maxAbs(values)), state.discretize);
    label.textContent = `neuron ${layer}-${unit}`;
  } else if (h.task === "classification" && h.classes && h.classes > 2) {
    paintClasses(canvas, a.output, a.confidence, R, R, h.classes, state.discretize);
  } else if (h.task === "regression") {
    paintValues(canvas, a.output, R, R, regressionScale(), state.discretize);
  } else {
    paintValues(canvas, a.output, R, R, 1, state.discretize);
  }
  const d = state.data;
  if (d && d.train && d.train.x) {
    const colour = pointColour(h.task, h.classes);
    drawPoints(canvas, d.train, h.domain, colour, "#fff");
    if (state.showTest) drawPoints(canvas, d.test, h.domain, colour, "#000");
  }
}

function drawConfusion(matrix, shape) {
  const table = $("confusion");
  table.replaceChildren();
  if (!matrix || !shape) return;
  const k = shape[0];
  const head = document.createElement("tr");
  head.append(cell("th", ""));
  for (let j = 0; j < k; j++) head.append(cell("th", String(j)));
  table.append(head);
  for (let i = 0; i < k; i++) {
    const row = document.createElement("tr");
    row.append(cell("th", String(i)));
    for (let j = 0; j < k; j++) {
      const td = cell("td", String(Math.round(matrix[i * k + j])));
      if (i === j) td.className = "diagonal";
      row.append(td);
    }
    table.append(row);
  }
}

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}

let legendKey = "";

/** The colour legend under the output: the diverging scale, or one swatch per class. */
function drawLegend(task = "classification", classes = 2, scale = 1) {
  const key = `${task}:${classes}:${scale}`;
  if (key === legendKey) return;
  legendKey = key;
  const canvas = $("legend");
  const labels = [$("legend-min"), $("legend-mid"), $("legend-max")];
  if (task === "classification" && classes > 2) {
    paintGrid(canvas, 1, classes, (i) => CLASS_COLOURS[i % CLASS_COLOURS.length], false);
    labels[0].textContent = "class 0";
    labels[1].textContent = `${classes} classes`;
    labels[2].textContent = `class ${classes - 1}`;
    return;
  }
  const n = 101;
  paintGrid(canvas, 1, n, (i) => diverging((i / (n - 1)) * 2 - 1));
  const s = task === "regression" ? Number(scale.toPrecision(3)) : 1;
  labels[0].textContent = String(-s);
  labels[1].textContent = "0";
  labels[2].textContent = String(s);
}

// ---------------------------------------------------------------------------

function main() {
  state.fragment = parseFragment();
  for (const key of Object.keys(PAGE_KEYS)) {
    if (key in state.fragment) state[key] = state.fragment[key] === "true";
  }
  $("show-test").checked = state.showTest;
  $("discretize").checked = state.discretize;
  drawLegend();
  bindControls();
  renderPlay();
  connect();
  window.addEventListener("resize", () => { if (state.config) buildNetwork(); });
}

main();
