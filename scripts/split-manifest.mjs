// Writes pkg/__wasm_split_manifest.json from the loader that wasm-split-cli emitted
// (pkg/__wasm_split.______________________.js): for each lazily loaded function, the wasm files it needs. The server
// reads it (Leptos' HydrationScripts) and adds `<link rel="preload">` for the chunks of the page
// it renders, so they download alongside the main bundle instead of after it. The same map as
// cargo-leptos' `--split` writes; wasm-split-cli (the library's binary) does not write it.
//   node scripts/split-manifest.mjs <pkg dir>
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const js = readFileSync(join(dir, "__wasm_split.______________________.js"), "utf8");
const chunks = {}; // "__chunk_3" -> "chunk_3"
for (const m of js.matchAll(/const (__chunk_\d+) = makeLoad\([^]*?"\.\/(chunk_\d+)\.wasm"/g)) chunks[m[1]] = m[2];
const manifest = {};
const loader = /export const __wasm_split_load_(\w+) = wrapAsyncCb\(makeLoad\(([^]*?)\n, \[([^\]]*)\]\)\);/g;
for (const m of js.matchAll(loader)) {
  const [, name, fetcher, deps] = m;
  const files = deps.split(",").map((d) => d.trim()).filter(Boolean).map((d) => {
    if (!chunks[d]) throw new Error(`split-manifest: unknown chunk ${d}`);
    return chunks[d];
  });
  const own = fetcher.match(/"\.\/(split_\w+)\.wasm"/);
  if (own) files.push(own[1]);
  manifest[name] = files;
}
if (Object.keys(manifest).length === 0) throw new Error("split-manifest: no split points found");
writeFileSync(join(dir, "__wasm_split_manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
