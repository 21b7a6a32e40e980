// The DSA code (jsrsasign, a few hundred KiB) must stay out of the main bundle: signing.js
// reaches it only through `await import("./dsa.js")`, so esbuild splits it into a chunk
// that loads on demand. Bundled here the way build.mjs bundles the client.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import * as esbuild from "esbuild";

const FRONTEND = fileURLToPath(new URL("..", import.meta.url));

/** Every output reached from `start` through static imports (dynamic import() excluded). */
function staticClosure(outputs, start) {
  const seen = new Set();
  const stack = [start];
  while (stack.length) {
    const path = stack.pop();
    if (seen.has(path)) continue;
    seen.add(path);
    for (const edge of outputs[path].imports) if (edge.kind === "import-statement") stack.push(edge.path);
  }
  return seen;
}

const hasJsrsasign = (output) => Object.keys(output.inputs).some((input) => input.includes("node_modules/jsrsasign/"));

test("jsrsasign is only in a lazily loaded chunk, never in what signing.js, certs.js or the engine load eagerly", async () => {
  const entries = ["src/crypto/signing.js", "src/crypto/certs.js", "src/engine/conversation.js"];
  const result = await esbuild.build({
    absWorkingDir: FRONTEND,
    entryPoints: entries,
    bundle: true,
    splitting: true,
    format: "esm",
    minify: true,
    write: false,
    outdir: "out",
    metafile: true,
    logLevel: "silent",
  });
  const outputs = result.metafile.outputs;
  const lazy = Object.entries(outputs).filter(([, output]) => hasJsrsasign(output));
  assert.equal(lazy.length, 1, "jsrsasign lands in exactly one chunk");
  const [dsaChunk] = lazy[0];
  for (const entry of entries) {
    const [path] = Object.entries(outputs).find(([, output]) => output.entryPoint === entry);
    const eager = staticClosure(outputs, path);
    assert.ok(!eager.has(dsaChunk), `${entry} does not load the DSA chunk eagerly`);
    assert.ok([...eager].every((p) => !hasJsrsasign(outputs[p])), `${entry}'s eager code has no jsrsasign`);
  }
  const dynamic = Object.values(outputs).some((output) =>
    output.imports.some((edge) => edge.kind === "dynamic-import" && edge.path === dsaChunk),
  );
  assert.ok(dynamic, "the DSA chunk is reached by a dynamic import()");
});
