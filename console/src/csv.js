// CSV → the fit body of PUT /v1/models/{name}, plus the history to plot.
// Accepted shapes: the long format `unique_id,ds,y` (columns in any order,
// `ds` optional), `ds,y` (one series), or one column of numbers (with or
// without a header). Empty cells and NA/NaN/null are missing values.

const MISSING = new Set(["", "na", "nan", "null", "none"]);

function splitLine(line) {
  // Minimal RFC 4180: commas, double-quoted fields with "" escapes.
  const out = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(field.trim());
      field = "";
    } else field += c;
  }
  out.push(field.trim());
  return out;
}

// A decimal number as the server reads it: JavaScript's Number() would also
// take "0x10", "0b11" and "Infinity".
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function decimal(text) {
  return DECIMAL.test(text) ? Number(text) : NaN;
}

function parseValue(text, where) {
  if (MISSING.has(text.toLowerCase())) return null;
  const v = decimal(text);
  if (!Number.isFinite(v)) throw new Error(`${where}: "${text}" is not a number`);
  return v;
}

/**
 * Parses CSV text. Returns {series: [{id, ds|null, values}], body} where body
 * is the JSON fit body (without method/season options).
 */
export function parseCsv(text) {
  const lines = text.split(/\r?\n/);
  // The final newline ends the last row; blank lines before the first row
  // are no rows.
  if (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  let skipped = 0;
  while (lines.length > 0 && lines[0].trim() === "") {
    lines.shift();
    skipped++;
  }
  if (lines.length === 0) throw new Error("the CSV is empty");
  const first = splitLine(lines[0]);
  // In one column an empty line is an empty cell: a missing value.
  const oneColumn = first.length === 1;
  const lower = first.map((h) => h.toLowerCase());
  const headed = first.some((h) => h !== "" && Number.isNaN(decimal(h)) && !MISSING.has(h.toLowerCase()));
  let idCol = -1;
  let dsCol = -1;
  let yCol = 0;
  let rows = lines;
  if (headed) {
    rows = lines.slice(1);
    idCol = lower.indexOf("unique_id");
    dsCol = lower.indexOf("ds");
    yCol = lower.indexOf("y");
    if (yCol < 0) {
      if (first.length === 1) yCol = 0;
      else throw new Error(`no "y" column in the header (${first.join(", ")})`);
    }
  } else if (first.length > 1) {
    throw new Error("several columns need a header: unique_id,ds,y or ds,y");
  }
  const byId = new Map();
  rows.forEach((line, i) => {
    if (!oneColumn && line.trim() === "") return;
    const cells = splitLine(line);
    const where = `line ${i + skipped + (headed ? 2 : 1)}`;
    if (cells.length <= yCol) throw new Error(`${where}: expected ${first.length} columns`);
    const id = idCol >= 0 ? cells[idCol] : "series";
    if (id === "") throw new Error(`${where}: empty unique_id`);
    let s = byId.get(id);
    if (!s) {
      s = { id, ds: dsCol >= 0 ? [] : null, values: [] };
      byId.set(id, s);
    }
    if (dsCol >= 0) s.ds.push(cells[dsCol]);
    s.values.push(parseValue(cells[yCol], where));
  });
  const series = [...byId.values()];
  if (series.length === 0) throw new Error("the CSV has a header but no rows");
  // A ds of whole numbers is an integer axis (as statsforecast allows): sent
  // as numbers, which the server places on their step.
  if (dsCol >= 0 && series.every((s) => s.ds.every((d) => /^-?\d{1,15}$/.test(d)))) {
    for (const s of series) s.ds = s.ds.map(Number);
  }
  let body;
  if (dsCol >= 0) {
    body = { unique_id: [], ds: [], y: [] };
    for (const s of series) {
      s.values.forEach((v, i) => {
        body.unique_id.push(s.id);
        body.ds.push(s.ds[i]);
        body.y.push(v);
      });
    }
  } else {
    body = { series: series.map((s) => ({ id: s.id, values: s.values })) };
  }
  return { series, body };
}

/** The items of a list typed as "24, 168" (a trailing comma is no item). */
function items(text) {
  return text.split(/[\s,]+/).filter((p) => p !== "");
}

/** "24, 168" → [24, 168]; "" → null. */
export function parseIntList(text, what) {
  const list = items(text);
  if (list.length === 0) return null;
  return list.map((p) => {
    const v = decimal(p);
    if (!Number.isInteger(v)) throw new Error(`${what}: "${p}" is not an integer`);
    return v;
  });
}

/** "80, 95" → [80, 95]; "" → []. */
export function parseNumberList(text, what) {
  return items(text).map((p) => {
    const v = decimal(p);
    if (!Number.isFinite(v)) throw new Error(`${what}: "${p}" is not a number`);
    return v;
  });
}
