// Packages the extension as a platform-specific VSIX (the native modules are per platform).
//   node scripts/package-vsix.mjs [--target linux-x64] [--out out/aries-studio-linux-x64.vsix] [--allow-missing-model]
// Builds the production bundles, then runs @vscode/vsce with .vscodeignore (an allow-list) whose
// onnxruntime-node binary line is swapped for the target's folder, so a VSIX carries one
// platform's binaries (linux-x64: ~50 MB of onnxruntime instead of ~290 MB for all).
// better-sqlite3 is compiled by `npm ci` for the machine it runs on: package each target on a
// machine of that platform (CI matrix), e.g. darwin-arm64 on an Apple-silicon Mac.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

const { values } = parseArgs({ options: { target: { type: 'string' }, out: { type: 'string' }, 'allow-missing-model': { type: 'boolean', default: false } } });
const host = `${process.platform}-${process.arch}`;
const target = values.target ?? host;
const fail = (msg) => {
  console.error(`package-vsix: ${msg}`);
  process.exit(1);
};

if (!(target in TARGETS)) fail(`target "${target}" has no onnxruntime-node binaries; use one of ${Object.keys(TARGETS).join(', ')}`);
if (target !== host) fail(`node_modules/better-sqlite3 is compiled for ${host}; package ${target} on a ${target} machine (after npm ci there)`);
const ortDir = `node_modules/onnxruntime-node/bin/napi-v6/${TARGETS[target]}`;
if (!existsSync(ortDir)) fail(`${ortDir} is missing; run npm ci (ONNXRUNTIME_NODE_INSTALL=skip keeps all CPU binaries)`);
if (!existsSync('node_modules/better-sqlite3/build/Release/better_sqlite3.node')) fail('better-sqlite3 is not built; run npm ci');
if (!existsSync('examples/arithmetic/model/onnx/model.onnx')) {
  if (!values['allow-missing-model']) fail('the bundled demo model examples/arithmetic/model is missing; build it first (or pass --allow-missing-model for a VSIX without the demo model)');
  console.error('package-vsix: WARNING: no examples/arithmetic/model — "Initialize Project" will not work from this VSIX');
}

execFileSync(process.execPath, ['esbuild.mjs', '--production'], { stdio: 'inherit' });

const ignore = readFileSync('.vscodeignore', 'utf8').replace('onnxruntime-node/bin/napi-v6/linux/x64/', `onnxruntime-node/bin/napi-v6/${TARGETS[target]}/`);
const ignoreFile = join(tmpdir(), `aries-vscodeignore-${target}-${process.pid}`);
writeFileSync(ignoreFile, ignore);

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const out = values.out ?? `out/${pkg.name}-${target}-${pkg.version}.vsix`;
mkdirSync('out', { recursive: true });
execFileSync(
  process.execPath,
  ['node_modules/@vscode/vsce/vsce', 'package', '--target', target, '--ignoreFile', ignoreFile, '--out', out, '--allow-missing-repository', '--no-rewrite-relative-links'],
  { stdio: 'inherit' },
);
console.error(`package-vsix: ${out} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
