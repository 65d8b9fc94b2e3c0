// End-to-end test of the console in headless Chromium (playwright-core with
// the system's browser, no download). Driven by
// crates/horizon/tests/console_browser.rs, which starts the real binary and
// passes: HORIZON_URL, CHROMIUM (executable), SCREENSHOT (output path),
// MODEL (a fresh model name), optionally HORIZON_API_KEY.
// Fits through the page, checks the chart against the API's own forecast,
// the models and versions lists, the rollback and backtest controls, and
// that the page loads nothing from anywhere but the server.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const base = process.env.HORIZON_URL;
const executablePath = process.env.CHROMIUM;
const screenshot = process.env.SCREENSHOT;
const model = process.env.MODEL || `console-e2e-${Date.now()}`;
const apiKey = process.env.HORIZON_API_KEY || "";
assert.ok(base && executablePath && screenshot, "HORIZON_URL, CHROMIUM and SCREENSHOT are required");

const log = (what, value) => console.log(`e2e: ${what}${value === undefined ? "" : ` ${JSON.stringify(value)}`}`);

// Two daily series with a weekly pattern, in the long format.
const N = 70;
const H = 14;
const rows = ["unique_id,ds,y"];
for (const [id, level, amp] of [["a", 100, 15], ["b", 40, 6]]) {
  for (let i = 0; i < N; i++) {
    const day = new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
    const y = level + 0.3 * i + amp * Math.sin((2 * Math.PI * i) / 7) + (((i * 37) % 11) - 5) * 0.04 * amp;
    rows.push(`${id},${day},${y.toFixed(2)}`);
  }
}
const csv = rows.join("\n");

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const r = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failed = null;
try {
  // West of UTC, where a date read as UTC midnight falls on the day before.
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 }, timezoneId: "America/Los_Angeles" });
  const foreign = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(`console: ${m.text()}`));

  // `/` leads to the console.
  await page.goto(base + "/");
  assert.equal(new URL(page.url()).pathname, "/ui/");
  assert.equal(await page.title(), "Horizon console");
  if (apiKey) await page.fill("#api-key", apiKey);

  // A file upload of one column of values (no header, no timestamps).
  const single = Array.from({ length: 30 }, (_, i) => (50 + (i % 5) * 3 + i * 0.5).toFixed(1));
  single[12] = "NA"; // a missing value
  await page.fill("#model-name", `${model}-single`);
  await page.setInputFiles("#csv-file", { name: "single.csv", mimeType: "text/csv", buffer: Buffer.from(single.join("\n") + "\n") });
  await page.waitForFunction(() => document.getElementById("csv-summary").textContent.startsWith("1 series, 30 points"));
  await page.selectOption("#method", "naive");
  await page.fill("#horizon", "5");
  await page.fill("#levels", "");
  await page.click("#fit-button");
  await page.waitForSelector(`#chart[data-model="${model}-single"][data-state="ready"]`);
  const one = await page.$eval("#chart", (el) => ({ ...el.dataset }));
  log("single-column chart", one);
  assert.equal(one.forecastPoints, "5");
  assert.equal(one.historyPoints, "29");
  assert.equal(one.bands, "0");
  assert.equal(one.seriesId, "series");
  // Naive: the forecast repeats the last observation.
  assert.equal(Number(one.lastMean), Number(single[29]));

  // Forecast only: the stored model, another horizon, no refit.
  await page.fill("#horizon", "3");
  await page.click("#forecast-button");
  await page.waitForSelector('#chart[data-forecast-points="3"]');
  assert.equal(await page.getAttribute("#chart", "data-version"), "1");
  // A file over 1 MiB is fitted from memory, not shown in the text box (too
  // slow for the browser to lay out); typing replaces it.
  const hours = Array.from({ length: 40000 }, (_, i) => {
    const ds = new Date(Date.UTC(2020, 0, 1) + i * 3600e3).toISOString().slice(0, 19);
    return `big,${ds},${(100 + (i % 24) + (i % 7) * 0.5).toFixed(4)}`;
  });
  const big = Buffer.from(["unique_id,ds,y", ...hours].join("\n") + "\n");
  assert.ok(big.length > 1 << 20, `${big.length} bytes`);
  await page.fill("#model-name", `${model}-big`);
  await page.setInputFiles("#csv-file", { name: "big.csv", mimeType: "text/csv", buffer: big });
  await page.waitForFunction(() => document.getElementById("csv-summary").textContent !== "");
  assert.equal(await page.textContent("#csv-summary"), "1 series, 40000 points, with timestamps (from big.csv, not shown)");
  assert.equal(await page.inputValue("#csv-text"), "");
  assert.match(await page.getAttribute("#csv-text", "placeholder"), /^big\.csv \(1\.\d MB\) is loaded but not shown/);
  await page.click("#fit-button");
  await page.waitForSelector(`#chart[data-model="${model}-big"][data-state="ready"]`, { timeout: 120000 });
  assert.equal(await page.getAttribute("#chart", "data-history-points"), "40000");
  // Clearing the file choice drops the file it loaded.
  await page.setInputFiles("#csv-file", []);
  await page.waitForFunction(() => document.getElementById("csv-summary").textContent === "");
  await page.fill("#csv-text", "y\n1\n2\n3\n");
  assert.equal(await page.textContent("#csv-summary"), "1 series, 3 points");
  assert.doesNotMatch(await page.getAttribute("#csv-text", "placeholder"), /big\.csv/);

  // An integer `ds` (with a gap at 30): the forecast continues its step, and
  // the chart plots at the positions.
  await page.fill("#model-name", `${model}-ints`);
  await page.fill("#csv-text", "ds,y\n10,5\n20,7\n40,6\n50,8\n60,7\n");
  await page.fill("#horizon", "2");
  await page.click("#fit-button");
  await page.waitForSelector(`#chart[data-model="${model}-ints"][data-state="ready"]`);
  const ints = await page.$eval("#chart", (el) => ({ ...el.dataset, xs: [...el._plot.data[0]] }));
  log("integer-ds chart", ints);
  assert.equal(ints.forecastPoints, "2");
  assert.equal(ints.historyPoints, "5");
  assert.equal(Number(ints.lastMean), 7);
  assert.deepEqual(ints.xs, [10, 20, 40, 50, 60, 70, 80]);
  // Only decimal numbers are values (JavaScript's Number() reads hex too).
  await page.fill("#csv-text", "y\n1\n0x10\n3\n");
  assert.equal(await page.textContent("#csv-summary"), 'CSV: line 3: "0x10" is not a number');
  // `ds,y` is one series with timestamps.
  await page.fill("#csv-text", "ds,y\n2024-01-31,5\n2024-02-29,7\n2024-03-31,\n2024-04-30,6\n");
  assert.equal(await page.textContent("#csv-summary"), "1 series, 4 points, with timestamps");
  // In one column an empty line is a missing value, not a dropped row.
  await page.fill("#csv-text", "y\n10\n11\n\n13\n14\n");
  assert.equal(await page.textContent("#csv-summary"), "1 series, 5 points");
  // Levels the forecast would refuse stop the fit before a version is made.
  await page.fill("#model-name", `${model}-dup`);
  await page.fill("#levels", "80,80");
  await page.click("#fit-button");
  await page.waitForFunction(() => /listed more than once/.test(document.getElementById("message").textContent));
  assert.equal((await api("GET", `/v1/models/${model}-dup`)).status, 404, "no version was made");
  await page.fill("#levels", "");

  // A fit the server refuses: its field message is shown.
  await page.fill("#model-name", model);
  await page.fill("#csv-text", csv);
  assert.match(await page.textContent("#csv-summary"), /^2 series, 140 points, with timestamps/);
  await page.fill("#freq", "fortnightly");
  await page.click("#fit-button");
  await page.waitForSelector('#message[data-kind="error"]');
  const refused = await page.textContent("#message");
  log("refused fit message", refused);
  assert.match(refused, /HTTP 400/);
  assert.match(refused, /freq/);

  // A horizon the forecast would refuse stops the fit before it is sent.
  await page.fill("#freq", "D");
  await page.fill("#horizon", "0");
  await page.click("#fit-button");
  await page.waitForFunction(() => /horizon must be/.test(document.getElementById("message").textContent));
  assert.equal((await api("GET", `/v1/models/${model}`)).status, 404, "no version was made");

  // The real fit: season 7, horizon 14, levels 80 and 95.
  await page.fill("#freq", "D");
  await page.fill("#season-length", "7");
  await page.selectOption("#method", "ets");
  await page.fill("#horizon", String(H));
  await page.fill("#levels", "80,95,"); // a trailing comma is no level
  await page.click("#fit-button");
  await page.waitForSelector('#chart[data-state="ready"]', { timeout: 60000 });
  await page.waitForSelector('#message[data-kind="ok"]');
  const chart = await page.$eval("#chart", (el) => ({ ...el.dataset }));
  log("chart", chart);
  assert.equal(chart.model, model);
  assert.equal(chart.seriesId, "a");
  assert.equal(chart.historyPoints, String(N));
  assert.equal(chart.forecastPoints, String(H));
  assert.equal(chart.levels, "80,95");
  assert.equal(chart.bands, "2");
  // The time axis shows the series' own dates in any browser zone.
  const first = await page.$eval("#chart", (el) => {
    // The legend's time under the cursor, put on the first point.
    const u = el._plot;
    u.setCursor({ left: u.valToPos(u.data[0][0], "x"), top: 10 });
    return { x: u.data[0][0], shown: el.querySelector(".u-legend .u-series .u-value").textContent };
  });
  log("first time", first);
  assert.equal(first.x, Date.UTC(2024, 0, 1) / 1000);
  assert.equal(first.shown, "2024-01-01 12:00am");

  // What is plotted is what the API forecasts for this version.
  const fc = await api("POST", `/v1/models/${model}/forecast`, { horizon: H, level: [80, 95] });
  assert.equal(fc.status, 200, JSON.stringify(fc.body));
  assert.equal(String(fc.body.data.version), chart.version);
  const a = fc.body.data.series.find((s) => s.id === "a");
  assert.equal(Number(chart.lastMean), a.mean[H - 1]);
  const plotted = await page.$eval("#chart", (el) => {
    const u = el._plot;
    return { x: u.data[0].length, forecast: u.data[2].filter((v) => v != null).length, lines: u.series.length };
  });
  log("plotted", plotted);
  assert.equal(plotted.x, N + H);
  // The forecast line starts at the last observation.
  assert.equal(plotted.forecast, H + 1);
  assert.equal(plotted.lines, 1 + 2 + 2 * 2);

  // The legend names history, forecast and each band's bounds.
  const legend = await page.$$eval("#chart .u-legend .u-series", (els) => els.map((e) => e.textContent.trim()));
  log("legend", legend);
  for (const label of ["history", "forecast", "80% lower", "80% upper", "95% lower", "95% upper"]) {
    assert.ok(legend.some((l) => l.startsWith(label)), `legend has ${label}: ${legend}`);
  }
  // The canvas has something drawn on it.
  const inked = await page.$eval("#chart canvas", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  log("inked pixels", inked);
  assert.ok(inked > 2000, `the chart is drawn (${inked} pixels)`);

  // The other series.
  await page.selectOption("#series-select", "b");
  await page.waitForSelector('#chart[data-series-id="b"]');
  const b = fc.body.data.series.find((s) => s.id === "b");
  assert.equal(Number(await page.getAttribute("#chart", "data-last-mean")), b.mean[H - 1]);

  // Models and versions, as the API lists them.
  await page.waitForSelector(`#models-table tr[data-model="${model}"]`);
  const row = await page.$$eval(`#models-table tr[data-model="${model}"] td`, (tds) => tds.map((t) => t.textContent));
  log("model row", row);
  assert.deepEqual(row, [model, chart.version, "ready", "1"]);
  const versions = await page.$$eval("#versions-table tbody tr", (trs) => trs.map((t) => ({ ...t.dataset })));
  log("versions", versions);
  assert.deepEqual(versions, [{ version: "1", status: "ready" }]);
  // Refresh lists again but keeps the name being typed.
  await page.fill("#model-name", "typed-not-fitted");
  await page.click("#refresh-models");
  await page.waitForFunction(() => / models$/.test(document.getElementById("message").textContent));
  assert.equal(await page.inputValue("#model-name"), "typed-not-fitted");
  await page.fill("#model-name", model);

  // Rollback: either the server does it (a new version appears) or its
  // error is shown as it is.
  await page.click('#versions-table tr[data-version="1"] button.rollback');
  await page.waitForSelector('#message[data-kind="ok"], #message[data-kind="error"]');
  const rollback = { kind: await page.getAttribute("#message", "data-kind"), text: await page.textContent("#message") };
  log("rollback", rollback);
  const rb = await api("POST", `/v1/models/${model}/rollback`, { version: 1 });
  if (rollback.kind === "ok") {
    await page.waitForSelector('#versions-table tr[data-version="2"]');
    assert.equal(rb.status, 201, "a rollback the page did works from the API too (201 Created)");
  } else {
    assert.match(rollback.text, new RegExp(`POST /v1/models/${model}/rollback: HTTP ${rb.status}`));
    assert.notEqual(rb.status, 200);
  }

  // Backtest: a metrics table, or the server's error.
  await page.fill("#bt-horizon", "7");
  await page.fill("#bt-windows", "2");
  await page.click("#backtest-button");
  await page.waitForFunction(() => ["ok", "error"].includes(document.getElementById("message").dataset.kind) && !/^backtesting/.test(document.getElementById("message").textContent), null, { timeout: 60000 });
  const backtest = { kind: await page.getAttribute("#message", "data-kind"), text: await page.textContent("#message") };
  log("backtest", backtest);
  if (backtest.kind === "ok") {
    const cells = await page.$$eval("#backtest-table tbody tr", (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
    log("backtest table", cells);
    assert.deepEqual(cells.map((c) => c[0]), ["all (mean)", "a", "b"]);
    assert.ok(cells.every((c) => Number.isFinite(Number(c[1]))), "MAE is a number");
    // Two windows of 7 forecasts over the history of the series shown.
    await page.waitForSelector('#chart[data-backtest-points="14"]');

  } else {
    const bt = await api("POST", `/v1/models/${model}/backtest`, { horizon: 7, n_windows: 2 });
    assert.notEqual(bt.status, 200);
    assert.match(backtest.text, new RegExp(`POST /v1/models/${model}/backtest: HTTP ${bt.status}`));
  }

  await page.selectOption("#series-select", "a");
  await page.waitForSelector('#chart[data-series-id="a"]');
  // The screenshot shows what the server really answered.
  await page.screenshot({ path: screenshot, fullPage: true });
  log("screenshot", screenshot);

  // Until the server has them, the page's handling of the documented
  // answers (BACKTEST_CONTRACT.md, rollback's new version) is checked
  // against stand-in answers with those shapes.
  if (rollback.kind !== "ok") {
    await page.route(`**/v1/models/${model}/rollback`, (route) =>
      route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ status: "success", data: { model, version: 2, rolled_back_to: 1, status: "ready" } }) }),
    );
    await page.click('#versions-table tr[data-version="1"] button.rollback');
    await page.waitForFunction(() => document.getElementById("message").dataset.kind === "ok");
    const text = await page.textContent("#message");
    log("rollback (stand-in answer)", text);
    assert.equal(text, `rolled ${model} back to version 1: now version 2`);
    await page.unroute(`**/v1/models/${model}/rollback`);
  }
  if (backtest.kind !== "ok") {
    const m = (mae) => ({ mae, rmse: mae * 1.25, smape: 4.5, mase: 0.75, coverage: { 80: 0.8125, 95: 1 } });
    let sent = null;
    await page.route(`**/v1/models/${model}/backtest`, (route) => {
      sent = route.request().postDataJSON();
      route.fulfill({
        status: 200,
        contentType: "application/json",
        body: JSON.stringify({
          status: "success",
          data: {
            method: "ets", horizon: 7, n_windows: 2, step_size: 7, refit: true, metrics: m(2),
            series: [
              { id: "a", metrics: m(3), windows: [55, 62].map((cutoff) => ({ cutoff, actual: Array(7).fill(100), mean: Array(7).fill(101), intervals: [] })) },
              { id: "b", metrics: m(1), windows: [] },
            ],
          },
        }),
      });
    });
    await page.click("#backtest-button");
    await page.waitForSelector("#backtest-table");
    assert.deepEqual(sent, { horizon: 7, n_windows: 2, level: [80, 95], refit: true, include_forecasts: true });
    // The windows' forecasts are drawn over the history of the series shown.
    await page.selectOption("#series-select", "a");
    await page.waitForSelector('#chart[data-series-id="a"][data-backtest-points="14"]');
    const bt = await page.$eval("#chart", (el) => el._plot.data[el._plot.series.findIndex((s) => s.label === "backtest")].map((v, i) => (v == null ? null : i)).filter((i) => i != null));
    assert.deepEqual(bt, [...Array(14).keys()].map((k) => 56 + k));
    const cells = await page.$$eval("#backtest-table tbody tr", (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
    log("backtest table (stand-in answer)", cells);
    assert.deepEqual(cells, [
      ["all (mean)", "2.000", "2.500", "4.500", "0.7500", "80%: 0.8125, 95%: 1.000"],
      ["a", "3.000", "3.750", "4.500", "0.7500", "80%: 0.8125, 95%: 1.000"],
      ["b", "1.000", "1.250", "4.500", "0.7500", "80%: 0.8125, 95%: 1.000"],
    ]);
    await page.unroute(`**/v1/models/${model}/backtest`);
  }


  assert.deepEqual(foreign, [], "the page loads nothing from elsewhere");
  if (backtest.kind === "ok") {
    // A CSV that skips five dates: each window's forecasts land on their own
    // dates (rows 21 to 34), not on grid positions counted as rows.
    const days = [...Array(40).keys()].filter((i) => i < 20 || i > 24);
    const gappy = ["ds,y", ...days.map((i) => `${new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10)},${50 + (i % 7) * 2}`)];
    await page.fill("#model-name", `${model}-gappy`);
    await page.fill("#csv-text", gappy.join("\n"));
    await page.fill("#season-length", "");
    await page.selectOption("#method", "naive");
    await page.click("#fit-button");
    await page.waitForSelector(`#chart[data-model="${model}-gappy"][data-state="ready"]`);
    await page.click("#backtest-button");
    await page.waitForSelector(`#chart[data-model="${model}-gappy"][data-backtest-points="14"]`, { timeout: 60000 });
    const placed = await page.$eval("#chart", (el) => el._plot.data[el._plot.series.findIndex((s) => s.label === "backtest")].map((v, i) => (v == null ? null : i)).filter((i) => i != null));
    assert.deepEqual(placed, [...Array(14).keys()].map((k) => 21 + k));
  }

  assert.deepEqual(pageErrors.filter((e) => !/Failed to load resource/.test(e)), [], "no script errors");
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) {
  console.error(failed);
  process.exit(1);
}
log("passed");
