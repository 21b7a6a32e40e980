// Build the browser client into web/static/web/dist/ and describe it in manifest.json.
//
// The page (web/bundle.py) reads the manifest to name the hashed files and to give each
// its Subresource Integrity hash, so a tampered file served from our origin is refused by
// the browser. `npm run build`; exit 1 on a build error or when the eagerly loaded JS
// exceeds the size budget.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zlibConstants, gzipSync } from "node:zlib";

import * as esbuild from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT_DIR = resolve(HERE, "..", "web", "static", "web", "dist");
const ENTRY_JS = "src/main.js";
const ENTRY_CSS = "src/styles/app.css";
// What a first visit must download before the client runs: the entry and its static
// imports, gzipped. The DSA code (jsrsasign) is imported lazily and is not counted.
const BUDGET_GZIP_BYTES = 250 * 1024;

/**
 * Gzip at the level a server would precompress with; the budget is measured on this.
 * @param {Buffer} bytes
 * @returns {Buffer}
 */
function gzip(bytes) {
  return gzipSync(bytes, { level: 9 });
}

/**
 * Brotli for browsers that accept it; WhiteNoise serves `<file>.br` and `<file>.gz`
 * beside the file when the request allows, so nothing is compressed per request.
 * @param {Buffer} bytes
 * @returns {Buffer}
 */
function brotli(bytes) {
  return brotliCompressSync(bytes, {
    params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11 },
  });
}

/**
 * The SRI value of `bytes`: SHA-384, as the page's integrity attributes carry it.
 * @param {Buffer} bytes
 * @returns {string}
 */
function sri(bytes) {
  return `sha384-${createHash("sha384").update(bytes).digest("base64")}`;
}

function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * Every JS output reached from `start` through static `import` statements, `start`
 * included. Dynamic `import()` edges are left out: those chunks load on demand.
 * @param {Record<string, any>} outputs esbuild metafile outputs
 * @param {string} start output path
 * @returns {string[]}
 */
function staticClosure(outputs, start) {
  const seen = new Set();
  const stack = [start];
  while (stack.length > 0) {
    const path = stack.pop();
    if (seen.has(path)) continue;
    seen.add(path);
    for (const edge of outputs[path].imports) {
      if (edge.kind === "import-statement" && !edge.external) stack.push(edge.path);
    }
  }
  return [...seen];
}

async function main() {
  // Old hashed files would otherwise pile up and stay servable.
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });

  const result = await esbuild.build({
    absWorkingDir: HERE,
    entryPoints: [ENTRY_JS, ENTRY_CSS],
    outdir: OUT_DIR,
    bundle: true,
    format: "esm",
    splitting: true, // dynamic import() gets its own chunk: the DSA code stays lazy
    minify: true,
    target: ["chrome120"],
    entryNames: "[name]-[hash]",
    chunkNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    loader: { ".woff2": "file", ".png": "file", ".svg": "file" },
    legalComments: "linked", // licences kept in a side file, out of the budget
    metafile: true,
    logLevel: "warning",
  });

  const outputs = result.metafile.outputs;
  const toName = (path) => relative(OUT_DIR, resolve(HERE, path)).split("\\").join("/");
  const entryOf = (source) =>
    Object.keys(outputs).find((path) => outputs[path].entryPoint === source);
  const jsPath = entryOf(ENTRY_JS);
  const cssPath = entryOf(ENTRY_CSS);
  if (outputs[jsPath].cssBundle) {
    // The page links only the stylesheet built from app.css; CSS imported from JS would
    // be emitted but never loaded.
    throw new Error(`${ENTRY_JS} imports CSS: import it from ${ENTRY_CSS} instead`);
  }

  const eager = new Set(staticClosure(outputs, jsPath));
  const files = {};
  for (const path of Object.keys(outputs).sort()) {
    const name = toName(path);
    const bytes = readFileSync(resolve(HERE, path));
    const gz = gzip(bytes);
    // Precompressed twins only where they save something (WhiteNoise's own rule: 5%).
    for (const [suffix, packed] of [[".gz", gz], [".br", brotli(bytes)]]) {
      if (packed.length < bytes.length * 0.95) writeFileSync(`${resolve(HERE, path)}${suffix}`, packed);
    }
    files[name] = {
      size: bytes.length,
      gzip_size: gz.length,
      integrity: sri(bytes),
      kind: name.endsWith(".js") ? (eager.has(path) ? "eager" : "lazy") : basename(name).split(".").pop(),
    };
  }

  const eagerGzip = [...eager].reduce((sum, path) => sum + files[toName(path)].gzip_size, 0);
  const manifest = {
    entry: { js: toName(jsPath), css: toName(cssPath) },
    eager_js: [...eager].map(toName).sort(),
    eager_js_gzip_size: eagerGzip,
    budget_gzip_size: BUDGET_GZIP_BYTES,
    files,
  };

  const width = Math.max(...Object.keys(files).map((name) => name.length));
  console.log(`${"file".padEnd(width)}  ${"size".padStart(10)}  ${"gzip".padStart(10)}  kind`);
  for (const [name, file] of Object.entries(files)) {
    console.log(
      `${name.padEnd(width)}  ${kib(file.size).padStart(10)}  ${kib(file.gzip_size).padStart(10)}  ${file.kind}`,
    );
  }
  console.log(`entry JS + static imports: ${kib(eagerGzip)} gzipped (budget ${kib(BUDGET_GZIP_BYTES)})`);
  if (eagerGzip > BUDGET_GZIP_BYTES) {
    // No manifest: the page says the front-end is not built rather than serving it, and
    // make tries the build again next time.
    console.error(
      `build: over budget: the entry JS and its static imports are ${kib(eagerGzip)} gzipped, ` +
        `more than ${kib(BUDGET_GZIP_BYTES)}; load large code with import() instead.`,
    );
    process.exit(1);
  }
  writeFileSync(join(OUT_DIR, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`build: wrote ${relative(process.cwd(), join(OUT_DIR, "manifest.json"))}`);
}

main().catch((error) => {
  console.error(`build: ${error.message}`);
  process.exit(1);
});
