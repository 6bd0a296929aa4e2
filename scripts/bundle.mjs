// Bundles the `meshfork` executable (src/bin/meshfork.ts with every dependency) into one ES
// module, lib/bundle/meshfork.mjs, with the files it reads beside it: the Lua filters
// (src/lua/index.ts reads them relative to the module) and re2-wasm's re2.wasm, and the licences
// of what it holds. The controller image runs this file: one module instead of ~1,300 starts in
// ~30 MiB less memory (ADR 0022). Usage: node scripts/bundle.mjs [outdir] [--minify=none]
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const REPO = new URL('../', import.meta.url).pathname;

/** Writes `<outdir>/meshfork.mjs` and the files beside it; resolves to the bundle's path. */
export async function bundleMeshfork(outdir = join(REPO, 'lib/bundle'), { minify = true } = {}) {
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, 'meshfork.mjs');
  const result = await build({
    metafile: true,
    entryPoints: [join(REPO, 'src/bin/meshfork.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify,
    // Class and function names stay: logs, errors and `instanceof` checks by name read them.
    keepNames: true,
    legalComments: 'eof',
    // CommonJS dependencies call require() for Node's built-ins and read __dirname (re2-wasm
    // loads re2.wasm from it); an ES module has neither.
    banner: {
      js: [
        "import { createRequire as __meshforkRequire } from 'node:module';",
        "import { fileURLToPath as __meshforkPath } from 'node:url';",
        'const require = __meshforkRequire(import.meta.url);',
        'const __filename = __meshforkPath(import.meta.url);',
        "const __dirname = __meshforkPath(new URL('.', import.meta.url));",
      ].join(' '),
    },
    // ws loads these optional native accelerators inside try/catch; without them it uses JavaScript.
    external: ['bufferutil', 'utf-8-validate'],
    logLevel: 'warning',
  });
  for (const file of readdirSync(join(REPO, 'src/lua'))) if (file.endsWith('.lua')) cpSync(join(REPO, 'src/lua', file), join(outdir, file));
  // `meshfork routes` evaluates regexes with re2-wasm, which reads its WebAssembly from __dirname.
  cpSync(join(REPO, 'node_modules/re2-wasm/build/wasm/re2.wasm'), join(outdir, 're2.wasm'));
  writeFileSync(join(outdir, 'THIRD_PARTY_LICENSES'), thirdPartyLicenses(Object.keys(result.metafile.inputs)));
  return outfile;
}

/**
 * The licence texts of every package the bundle holds code of (esbuild's metafile inputs under
 * node_modules, and re2-wasm's re2.wasm), each under its name, version and declared licence:
 * the image ships the bundle without node_modules, so their notices travel in this file.
 */
function thirdPartyLicenses(inputs) {
  const roots = new Set([join(REPO, 'node_modules/re2-wasm')]);
  for (const input of inputs) {
    const at = input.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const rest = input.slice(at + 'node_modules/'.length).split('/');
    const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    roots.add(join(REPO, input.slice(0, at), 'node_modules', name));
  }
  const sections = [...roots]
    .map((root) => {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      const files = readdirSync(root).filter((f) => /^(licen[cs]e|copying|notice)(\.|-|$)/i.test(f)).sort();
      const texts = files.map((f) => readFileSync(join(root, f), 'utf8').trim());
      const declared = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? pkg.licenses ?? 'not declared');
      return `${pkg.name}@${pkg.version} (${declared})\n\n${texts.length > 0 ? texts.join('\n\n') : 'The package holds no licence file; its package.json declares the licence above.'}`;
    })
    .sort();
  const rule = `\n\n${'-'.repeat(78)}\n\n`;
  return `Third-party software in meshfork.mjs and re2.wasm (${sections.length} packages)${rule}${sections.join(rule)}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [outdir, ...flags] = process.argv.slice(2);
  await bundleMeshfork(outdir, { minify: !flags.includes('--minify=none') });
}
