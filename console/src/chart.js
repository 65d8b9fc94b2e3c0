// The forecast chart (uPlot): history, forecast mean and one shaded band per
// interval level. The container's data-* attributes say what is plotted, for
// people reading the DOM and for the browser test.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const BAND_COLORS = ["rgba(31,119,180,0.28)", "rgba(31,119,180,0.14)", "rgba(31,119,180,0.08)"];

const WALL_CLOCK = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(?:Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Seconds for uPlot's time axis, or null when not a date: the timestamp's
 * own wall clock read as UTC (its offset dropped), drawn in UTC below, so
 * that the axis shows the series' dates and hours in any browser's zone.
 */
function toSeconds(ds) {
  const m = typeof ds === "string" ? WALL_CLOCK.exec(ds) : null;
  if (!m) return null;
  const t = Date.parse(`${m[1]}T${m[2] || "00:00"}Z`);
  return Number.isFinite(t) ? t / 1000 : null;
}

const inUtc = (seconds) => uPlot.tzDate(new Date(seconds * 1e3), "Etc/UTC");

/**
 * Draws `history` ({id, ds|null, values}) and `forecast` (one item of the
 * forecast answer's `series`: {id, ds?, mean, intervals}) into `el`.
 */
export function drawChart(el, history, forecast, windows = []) {
  if (el._plot) {
    el._plot.destroy();
    el._plot = null;
  }
  el.replaceChildren();
  const hist = history ? history.values : [];
  const mean = forecast ? forecast.mean : [];
  const intervals = forecast ? [...forecast.intervals].sort((a, b) => b.level - a.level) : [];
  // A time axis when every timestamp parses; positions otherwise.
  let xs = null;
  let timeAxis = false;
  let fromDs = false; // xs are the series' own timestamps or positions
  const histDs = history && history.ds;
  const fcDs = forecast && forecast.ds;
  if (histDs && (fcDs || mean.length === 0)) {
    const given = [...histDs, ...(fcDs || [])];
    const all = given.map(toSeconds);
    if (all.every((v) => v !== null)) {
      xs = all;
      timeAxis = true;
      fromDs = true;
    } else if (given.every((v) => typeof v === "number")) {
      // An integer axis: plotted at its positions (gaps stay gaps).
      xs = given;
      fromDs = true;
    }
  }
  const n = hist.length + mean.length;
  if (!xs) xs = Array.from({ length: n }, (_, i) => i);
  const pad = (values, before, after) => [...Array(before).fill(null), ...values, ...Array(after).fill(null)];
  // The forecast line starts at the last observation so it joins the history.
  const last = hist.length > 0 ? hist[hist.length - 1] : null;
  const joinAt = hist.length > 0 ? hist.length - 1 : 0;
  const joined = (values) => (hist.length > 0 ? [last, ...values] : values);
  const data = [xs, pad(hist, 0, mean.length), pad(joined(mean), joinAt, 0)];
  const series = [
    {},
    { label: "history", stroke: "#333", width: 1.5, spanGaps: false },
    { label: "forecast", stroke: "#1f77b4", width: 2 },
  ];
  // Backtest forecasts over the history they were scored against: placed
  // by their `ds` where the series has a time axis (a CSV with skipped dates
  // has fewer rows than the server's grid has steps), else by `cutoff`, the
  // index of their last training point.
  let backtestPoints = 0;
  if (windows.length > 0 && hist.length > 0) {
    const line = Array(n).fill(null);
    const key = (d) => (timeAxis ? toSeconds(d) : d);
    const row = new Map();
    if (fromDs) for (let i = 0; i < hist.length; i++) row.set(xs[i], i);
    for (const w of windows) {
      w.mean.forEach((v, j) => {
        const at = w.ds && row.size > 0 ? row.get(key(w.ds[j])) ?? -1 : w.cutoff + 1 + j;
        if (at >= 0 && at < hist.length) {
          line[at] = v;
          backtestPoints++;
        }
      });
    }
    data.push(line);
    series.push({ label: "backtest", stroke: "#d62728", width: 1.5, dash: [6, 3], spanGaps: false });
  }
  const bands = [];
  intervals.forEach((iv, k) => {
    const upper = data.length;
    data.push(pad(joined(iv.upper), joinAt, 0));
    series.push({ label: `${iv.level}% upper`, stroke: "rgba(31,119,180,0.5)", width: 1, dash: [4, 4] });
    data.push(pad(joined(iv.lower), joinAt, 0));
    series.push({ label: `${iv.level}% lower`, stroke: "rgba(31,119,180,0.5)", width: 1, dash: [4, 4] });
    bands.push({ series: [upper, upper + 1], fill: BAND_COLORS[Math.min(k, BAND_COLORS.length - 1)] });
  });
  const width = Math.max(320, el.clientWidth || 800);
  const plot = new uPlot(
    {
      width,
      height: 360,
      scales: { x: { time: timeAxis } },
      tzDate: inUtc,
      series,
      bands,
      axes: [{}, {}],
      legend: { live: true },
    },
    data,
    el,
  );
  el._plot = plot;
  el.dataset.state = "ready";
  el.dataset.seriesId = (forecast && forecast.id) || (history && history.id) || "";
  el.dataset.historyPoints = String(hist.filter((v) => v !== null).length);
  el.dataset.forecastPoints = String(mean.length);
  el.dataset.levels = intervals.map((iv) => iv.level).sort((a, b) => a - b).join(",");
  el.dataset.bands = String(bands.length);
  el.dataset.backtestPoints = String(backtestPoints);
  el.dataset.lastMean = mean.length ? String(mean[mean.length - 1]) : "";
  return plot;
}

export function clearChart(el, state) {
  if (el._plot) {
    el._plot.destroy();
    el._plot = null;
  }
  el.replaceChildren();
  el.dataset.state = state;
}
