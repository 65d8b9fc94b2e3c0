// Horizon's web console: fit a CSV through PUT /v1/models/{name}, chart the
// forecast with its intervals, list models and versions, roll back and run
// backtests. Everything goes through the public HTTP API of the server that
// serves this page, with the API key (if any) as a Bearer token.
import { createApi, ApiError } from "./api.js";
import { parseCsv, parseIntList, parseNumberList } from "./csv.js";
import { drawChart, clearChart } from "./chart.js";
import "./style.css";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "horizon-console-api-key";

// Larger uploads are kept out of the text box: Chromium takes ~20 s to lay
// out 15 MB of text there, and as long again at each keystroke.
const SHOWN_FILE_BYTES = 1 << 20;

const state = {
  file: null, // {name, text} of an uploaded CSV too large to show in the text box
  parsed: null, // {series, body} of the CSV in the form
  fitted: {}, // "model@version" -> the parsed CSV this page fitted it on (its history)
  forecast: null, // the last forecast answer's data
  backtest: null, // the last backtest answer's data, with its model's name
  selectedModel: null,
};

const api = createApi(() => $("api-key").value.trim());

/** The key of a version's history in `state.fitted`. */
const fittedKey = (name, version) => `${name}@${version}`;

function show(kind, text) {
  const el = $("message");
  el.dataset.kind = kind;
  el.textContent = text;
}

function reportError(e) {
  show("error", e instanceof ApiError || e instanceof Error ? e.message : String(e));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function modelName() {
  const name = $("model-name").value.trim();
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error("model name: 1 to 64 characters from A-Z a-z 0-9 _ - .");
  return name;
}

function modelPath(name) {
  return `/v1/models/${encodeURIComponent(name)}`;
}

// --- CSV -----------------------------------------------------------------

function reparse() {
  const text = state.file ? state.file.text : $("csv-text").value;
  if (text.trim() === "") {
    state.parsed = null;
    $("csv-summary").textContent = "";
    return;
  }
  const from = state.file ? ` (from ${state.file.name}, not shown)` : "";
  try {
    state.parsed = parseCsv(text);
    const s = state.parsed.series;
    const points = s.reduce((n, x) => n + x.values.length, 0);
    $("csv-summary").textContent = `${s.length} series, ${points} points${s[0].ds ? ", with timestamps" : ""}${from}`;
  } catch (e) {
    state.parsed = null;
    $("csv-summary").textContent = `CSV${from}: ${e.message}`;
  }
}

function textPlaceholder() {
  return $("csv-text").dataset.placeholder;
}

async function loadFile() {
  const file = $("csv-file").files[0];
  const box = $("csv-text");
  if (!file) {
    // The choice was cleared: so is the file it loaded.
    if (state.file) {
      state.file = null;
      box.placeholder = textPlaceholder();
      reparse();
    }
    return;
  }
  const text = await file.text();
  if (text.length > SHOWN_FILE_BYTES) {
    state.file = { name: file.name, text };
    box.value = "";
    box.placeholder = `${file.name} (${(file.size / 1e6).toFixed(1)} MB) is loaded but not shown here; type or paste to use text instead`;
  } else {
    state.file = null;
    box.value = text;
    box.placeholder = textPlaceholder();
  }
  reparse();
}

// --- fit and forecast ------------------------------------------------------

function fitBody() {
  if (!state.parsed) {
    reparse();
    if (!state.parsed) throw new Error($("csv-summary").textContent || "paste or upload a CSV first");
  }
  const body = { ...state.parsed.body, method: $("method").value };
  const seasons = parseIntList($("season-length").value, "season lengths");
  if (seasons) body.season_length = seasons.length === 1 ? seasons[0] : seasons;
  const freq = $("freq").value.trim();
  if (freq) body.freq = freq;
  return body;
}

/** Follows a 202 + Location (an async job) until it settles. */
async function settle(answer) {
  if (answer.status !== 202) return answer.data;
  const location = answer.headers.get("Location");
  if (!location) return answer.data;
  for (let i = 0; i < 600; i++) {
    const job = (await api("GET", location)).data;
    show("busy", `job ${job.id ?? ""}: ${job.status}${job.progress ? ` (${JSON.stringify(job.progress)})` : ""}`);
    if (job.status === "succeeded") return job.result ?? job.answer ?? job;
    if (job.status === "failed" || job.status === "cancelled") {
      throw new Error(`job ${job.status}: ${JSON.stringify(job.error ?? job.reason ?? job)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`job at ${location} did not finish within 10 minutes`);
}

/** The forecast asked for in the form, checked before anything is sent. */
function forecastAsk() {
  const horizon = Number($("horizon").value);
  if (!Number.isInteger(horizon) || horizon < 1 || horizon > 10000) {
    throw new Error(`horizon must be a whole number from 1 to 10000, got "${$("horizon").value}"`);
  }
  const level = parseNumberList($("levels").value, "interval levels");
  const bad = level.find((l) => !(l > 0 && l < 100));
  if (bad !== undefined) throw new Error(`interval levels must lie strictly between 0 and 100, got ${bad}`);
  const twice = level.find((l, i) => level.indexOf(l) !== i);
  if (twice !== undefined) throw new Error(`interval levels: ${twice} is listed more than once`);
  return { horizon, level };
}

async function fit() {
  const name = modelName();
  const body = fitBody();
  // A forecast that would be refused must not leave a new version behind.
  const ask = forecastAsk();
  const parsed = state.parsed;
  show("busy", `fitting ${name}...`);
  const answer = await api("PUT", modelPath(name), body);
  const data = await settle(answer);
  state.fitted[fittedKey(name, data.version)] = parsed;
  // A backtest of the version before is not one of this version.
  forgetBacktest(name);
  const rows = (data.series || []).map((s) => `${s.id}: ${s.chosen}${s.fallback ? ` (fallback: ${s.fallback})` : ""}`);
  $("fit-result").textContent = `version ${data.version} (${data.method}) - ${rows.join("; ")}`;
  show("ok", `fitted ${name} version ${data.version}`);
  await forecast(name, ask);
  await refreshModels(name);
}

async function forecast(name = modelName(), { horizon, level } = forecastAsk()) {
  show("busy", `forecasting ${name}...`);
  const data = (await api("POST", `${modelPath(name)}/forecast`, { horizon, level })).data;
  state.forecast = data;
  const select = $("series-select");
  const shown = select.value;
  select.replaceChildren(...data.series.map((s) => el("option", { value: s.id }, s.id)));
  if (data.series.some((s) => s.id === shown)) select.value = shown;
  drawSelected();
  show("ok", `forecast of ${name} version ${data.version}: ${data.series.length} series, ${horizon} steps`);
}

function drawSelected() {
  const chart = $("chart");
  const data = state.forecast;
  if (!data || data.series.length === 0) {
    clearChart(chart, "empty");
    return;
  }
  const id = $("series-select").value || data.series[0].id;
  const fc = data.series.find((s) => s.id === id) || data.series[0];
  // The history is the CSV this page fitted the model on (not whatever the
  // form holds now), when it holds this series.
  const source = state.fitted[fittedKey(data.model, data.version)];
  const history = source ? source.series.find((s) => s.id === fc.id) || null : null;
  chart.dataset.model = data.model;
  chart.dataset.version = String(data.version);
  // The backtest's windows of this series, when it was run on this model.
  const bt = state.backtest && state.backtest.model === data.model ? state.backtest.data : null;
  const windows = bt ? (bt.series || []).find((s) => s.id === fc.id)?.windows || [] : [];
  drawChart(chart, history, fc, windows);
}

// --- models and versions ---------------------------------------------------

async function refreshModels(select) {
  const data = (await api("GET", "/v1/models?limit=1000")).data;
  const body = $("models-table").tBodies[0];
  body.replaceChildren(
    ...data.models.map((m) =>
      el(
        "tr",
        { dataset: { model: m.name }, class: m.name === (select ?? state.selectedModel) ? "selected" : "" },
        el("td", {}, el("a", { href: "#", onclick: (ev) => (ev.preventDefault(), selectModel(m.name).catch(reportError)) }, m.name)),
        el("td", {}, m.latest_version),
        el("td", { class: `status-${m.latest_status}` }, m.latest_status),
        el("td", {}, m.n_versions),
      ),
    ),
  );
  const which = select ?? state.selectedModel;
  // A refresh shows the versions again but keeps the name being typed.
  if (which) await selectModel(which, { name: select !== undefined });
  return data.models.length;
}

async function selectModel(name, { name: setName = true } = {}) {
  state.selectedModel = name;
  if (setName) $("model-name").value = name;
  for (const row of $("models-table").tBodies[0].rows) row.classList.toggle("selected", row.dataset.model === name);
  const data = (await api("GET", `${modelPath(name)}?limit=1000`)).data;
  $("versions-model").textContent = name;
  const body = $("versions-table").tBodies[0];
  const versions = [...data.versions].sort((a, b) => b.version - a.version);
  body.replaceChildren(
    ...versions.map((v) =>
      el(
        "tr",
        { dataset: { version: v.version, status: v.status } },
        el("td", {}, v.version),
        el("td", { class: `status-${v.status}`, title: v.reason || "" }, v.status + (v.reason ? ` (${v.reason})` : "")),
        el("td", {}, v.created_at),
        el("td", {}, v.n_series),
        el("td", {}, v.method ?? ""),
        el("td", {}, v.n_fallbacks ?? ""),
        el(
          "td",
          {},
          el("button", { type: "button", class: "rollback", onclick: () => rollback(name, v.version).catch(reportError) }, "Roll back to this"),
        ),
      ),
    ),
  );
}

async function rollback(name, version) {
  show("busy", `rolling ${name} back to version ${version}...`);
  const answer = await api("POST", `${modelPath(name)}/rollback`, { version });
  const data = await settle(answer);
  if (data && data.version) {
    const history = state.fitted[fittedKey(name, version)];
    if (history) state.fitted[fittedKey(name, data.version)] = history;
    $("fit-result").textContent = `version ${data.version} (${data.method}), a copy of version ${version}`;
  }
  forgetBacktest(name);
  show("ok", `rolled ${name} back to version ${version}${data && data.version ? `: now version ${data.version}` : ""}`);
  await refreshModels(name);
}

// --- backtest --------------------------------------------------------------

/** Drops the backtest of `name` (its version is no longer the newest). */
function forgetBacktest(name) {
  if (state.backtest && state.backtest.model === name) {
    state.backtest = null;
    $("backtest-result").replaceChildren();
  }
}

const fmt = (v) => (typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)) : v == null ? "" : String(v));

function metricsRow(label, m) {
  const coverage = m.coverage ? Object.entries(m.coverage).map(([l, c]) => `${l}%: ${fmt(c)}`).join(", ") : "";
  return el("tr", {}, el("td", {}, label), el("td", {}, fmt(m.mae)), el("td", {}, fmt(m.rmse)), el("td", {}, fmt(m.smape)), el("td", {}, fmt(m.mase)), el("td", {}, coverage));
}

async function backtest() {
  // The model named in the form, as for a fit or a forecast.
  const name = modelName();
  const body = {
    horizon: Number($("bt-horizon").value),
    n_windows: Number($("bt-windows").value),
    level: parseNumberList($("bt-levels").value, "backtest levels"),
    refit: $("bt-refit").checked,
    include_forecasts: true,
  };
  show("busy", `backtesting ${name}...`);
  const out = $("backtest-result");
  out.replaceChildren();
  const data = await settle(await api("POST", `${modelPath(name)}/backtest`, body));
  out.replaceChildren(
    el("p", {}, `${name}: method ${data.method}, horizon ${data.horizon}, ${data.n_windows} windows every ${data.step_size}, refit ${data.refit}`),
    el(
      "table",
      { id: "backtest-table" },
      el("thead", {}, el("tr", {}, ...["series", "MAE", "RMSE", "sMAPE %", "MASE", "coverage"].map((h) => el("th", {}, h)))),
      el("tbody", {}, metricsRow("all (mean)", data.metrics), ...(data.series || []).map((s) => metricsRow(s.id, s.metrics))),
    ),
  );
  state.backtest = { model: name, data };
  drawSelected();
  show("ok", `backtest of ${name} done`);
}

// --- wiring ----------------------------------------------------------------

/** A click handler running `fn`, its button disabled until it ends (a
 * double click must not fit twice). */
function guard(fn) {
  return (ev) => {
    const button = ev && ev.currentTarget instanceof HTMLButtonElement ? ev.currentTarget : null;
    if (button) button.disabled = true;
    Promise.resolve()
      .then(fn)
      .catch(reportError)
      .finally(() => {
        if (button) button.disabled = false;
      });
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("change", () => localStorage.setItem(KEY_STORAGE, $("api-key").value.trim()));
  $("csv-text").dataset.placeholder = $("csv-text").placeholder;
  $("csv-text").addEventListener("input", () => {
    // Typed or pasted text replaces whatever file was chosen.
    $("csv-file").value = "";
    state.file = null;
    $("csv-text").placeholder = textPlaceholder();
    reparse();
  });
  $("csv-file").addEventListener("change", guard(loadFile));
  $("fit-button").addEventListener("click", guard(fit));
  $("forecast-button").addEventListener("click", guard(() => forecast()));
  $("series-select").addEventListener("change", drawSelected);
  $("refresh-models").addEventListener(
    "click",
    guard(async () => show("ok", `${await refreshModels()} models`)),
  );
  $("backtest-button").addEventListener("click", guard(backtest));
  window.addEventListener("resize", () => state.forecast && drawSelected());
  refreshModels().catch(reportError);
});
