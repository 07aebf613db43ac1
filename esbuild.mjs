// Builds the bundles that ship:
//   dist/aries.js      the engine: CLI and JSON-RPC server (node, cjs)
//   dist/extension.js  the VS Code extension host side (cjs, `vscode` external)
//   dist/webview/*.js  the webviews (browser, esm)
// Native modules (better-sqlite3, onnxruntime-node) stay external: they load from node_modules.
// Usage: node esbuild.mjs [--watch] [--production]
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'info', legalComments: 'none' };
const nativeExternals = ['better-sqlite3', 'onnxruntime-node'];

const targets = [
  { ...common, entryPoints: ['engine/src/cli/main.ts'], outfile: 'dist/aries.js', platform: 'node', format: 'cjs', target: 'node20', external: nativeExternals },
];
if (existsSync('extension/src/extension.ts')) {
  targets.push({ ...common, entryPoints: ['extension/src/extension.ts'], outfile: 'dist/extension.js', platform: 'node', format: 'cjs', target: 'node20', external: ['vscode', ...nativeExternals] });
}
for (const name of ['review', 'dashboard', 'try-prompt']) {
  const entry = `webview/src/${name}/main.ts`;
  if (existsSync(entry)) targets.push({ ...common, entryPoints: [entry], outfile: `dist/webview/${name}.js`, platform: 'browser', format: 'esm', target: 'es2022' });
}

if (watch) {
  for (const t of targets) await (await esbuild.context(t)).watch();
} else {
  await Promise.all(targets.map((t) => esbuild.build(t)));
}
