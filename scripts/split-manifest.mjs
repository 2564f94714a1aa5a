// Finishes the split bundle in a pkg folder, after wasm-opt (scripts/build.sh):
//  1. names each lazily loaded wasm file (split_*.wasm, chunk_*.wasm) after its content and the
//     main bundle's (`split_<name>.<hash>.wasm`) and rewrites the loader
//     (__wasm_split.______________________.js) to match, so a tab still running an older main
//     bundle after a new deploy gets a clean 404 for a file it asks for, never a file built for
//     another main bundle;
//  2. writes __wasm_split_manifest.json: for each lazily loaded function, the files it needs. The
//     server reads it (Leptos' HydrationScripts) and adds `<link rel="preload">` for the files of
//     the page it renders, so they download alongside the main bundle instead of after it. The same
//     map as cargo-leptos' `--split` writes; wasm-split-cli (the library's binary) does not write it.
//   node scripts/split-manifest.mjs <pkg dir>
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const loaderPath = join(dir, "__wasm_split.______________________.js");
let js = readFileSync(loaderPath, "utf8");

// A lazily loaded file is only valid with the main bundle it was split from (it calls into it by
// index): its name hashes both.
const main = readFileSync(join(dir, "turnstile_bg.wasm"));
const renamed = {}; // "chunk_3" -> "chunk_3.1a2b3c4d5e6f"
for (const file of readdirSync(dir)) {
  const m = file.match(/^((?:split|chunk)_\w+)\.wasm$/);
  if (!m) continue;
  const hash = createHash("sha256").update(main).update(readFileSync(join(dir, file))).digest("hex").slice(0, 12);
  renamed[m[1]] = `${m[1]}.${hash}`;
  renameSync(join(dir, file), join(dir, `${renamed[m[1]]}.wasm`));
}
js = js.replace(/"\.\/((?:split|chunk)_\w+)\.wasm"/g, (whole, stem) => {
  if (!renamed[stem]) throw new Error(`split-manifest: the loader names ${stem}.wasm, which is not here`);
  return `"./${renamed[stem]}.wasm"`;
});
writeFileSync(loaderPath, js);

const chunks = {}; // "__chunk_3" -> "chunk_3.<hash>"
for (const m of js.matchAll(/const (__chunk_\d+) = makeLoad\([^]*?"\.\/(chunk_[\w.]+)\.wasm"/g)) chunks[m[1]] = m[2];
const manifest = {};
const loader = /export const __wasm_split_load_(\w+) = wrapAsyncCb\(makeLoad\(([^]*?)\n, \[([^\]]*)\]\)\);/g;
for (const m of js.matchAll(loader)) {
  const [, name, fetcher, deps] = m;
  const files = deps.split(",").map((d) => d.trim()).filter(Boolean).map((d) => {
    if (!chunks[d]) throw new Error(`split-manifest: unknown chunk ${d}`);
    return chunks[d];
  });
  const own = fetcher.match(/"\.\/(split_[\w.]+)\.wasm"/);
  if (own) files.push(own[1]);
  manifest[name] = files;
}
if (Object.keys(manifest).length === 0) throw new Error("split-manifest: no split points found");
writeFileSync(join(dir, "__wasm_split_manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
