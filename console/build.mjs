// Bundles the console (src/) with uPlot into dist/: index.html, app.js and
// app.css, minified. dist/ is committed and embedded into the horizon binary
// (crates/gateway/src/ui.rs), so building Rust needs neither npm nor network.
// `node build.mjs --check` builds in memory and fails when dist/ is stale.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const check = process.argv.includes("--check");

const result = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  outdir: dist,
  write: false,
  logLevel: "warning",
});

const outputs = new Map(
  result.outputFiles.map((f) => [f.path.slice(dist.length + 1), Buffer.from(f.contents)]),
);
outputs.set("index.html", readFileSync(join(here, "src", "index.html")));

let stale = [];
for (const [name, bytes] of outputs) {
  const path = join(dist, name);
  if (check) {
    let current = null;
    try {
      current = readFileSync(path);
    } catch {}
    if (!current || !current.equals(bytes)) stale.push(name);
  } else {
    mkdirSync(dist, { recursive: true });
    writeFileSync(path, bytes);
    console.log(`${name}: ${bytes.length} bytes`);
  }
}
if (check) {
  if (stale.length) {
    console.error(`console/dist is out of date (${stale.join(", ")}): run npm run build in console/`);
    process.exit(1);
  }
  console.log("console/dist is up to date");
}
