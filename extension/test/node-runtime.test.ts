import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nodeOnPath, probeNode, type ProbeResult, resolveEngineNode, unsuitable } from '../src/node-runtime';

const REPO = join(__dirname, '../..');
const ok = (version = 'v20.20.2', abi = 115): ProbeResult => ({ version, abi, sqlite: 'ok' });
const abiMismatch = (version: string, abi: number): ProbeResult => ({
  version,
  abi,
  sqlite: `The module '/x/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION ${abi}. Please try re-compiling`,
});
const base = { pathEnv: '/a/bin:/b/bin', platform: 'linux' as const, host: { execPath: '/electron/code', electron: true }, isExecutable: (f: string) => f.startsWith('/a/') || f.startsWith('/b/') || f === '/opt/node20/bin/node' };

describe('which Node runs the engine', () => {
  it('lists node on PATH in order, skipping relative and missing entries', () => {
    assert.deepEqual(nodeOnPath('/a/bin:relative:/c/bin:/b/bin:/a/bin', 'linux', (f) => !f.startsWith('/c/')), ['/a/bin/node', '/b/bin/node']);
    assert.deepEqual(nodeOnPath('C:\\node;relative;D:\\x', 'win32', (f) => f.startsWith('C:')), ['C:\\node\\node.exe']);
    assert.deepEqual(nodeOnPath(undefined, 'linux', () => true), []);
  });

  it('explains an ABI mismatch with both numbers and says which Node fits', () => {
    assert.equal(unsuitable('/n', ok()), null);
    assert.match(unsuitable('/n', abiMismatch('v22.3.0', 127))!, /\/n is Node v22\.3\.0 \(ABI 127\), but the bundled better-sqlite3 is built for ABI 115 \(Node 20\)/);
    assert.match(unsuitable('/n', ok('v18.19.0', 108))!, /needs Node 20 or later/);
    assert.match(unsuitable('/n', { error: 'spawn EACCES' })!, /did not run \(spawn EACCES\)/);
  });

  it('uses aries.nodePath when set, and names the setting when it is wrong', async () => {
    const r = await resolveEngineNode({ ...base, configured: '/opt/node20/bin/node', probe: async () => ok() });
    assert.deepEqual(r, { ok: true, runtime: { path: '/opt/node20/bin/node', version: 'v20.20.2', abi: 115 }, source: 'setting' });
    const missing = await resolveEngineNode({ ...base, configured: '/nope/node', probe: async () => ok() });
    assert.equal(missing.ok, false);
    if (!missing.ok) {
      assert.match(missing.problem, /"aries\.nodePath" is \/nope\/node, which is not an executable file/);
      assert.match(missing.fix, /Set "aries\.nodePath" to a Node\.js 20 executable/);
    }
    const wrong = await resolveEngineNode({ ...base, configured: '/opt/node20/bin/node', probe: async () => abiMismatch('v22.3.0', 127) });
    assert.ok(!wrong.ok && /ABI 127/.test(wrong.problem) && /aries\.nodePath/.test(wrong.fix));
  });

  it('takes the first node on PATH that loads the module, and reports every one that does not', async () => {
    const probe = async (exe: string) => (exe === '/a/bin/node' ? abiMismatch('v22.3.0', 127) : ok());
    const r = await resolveEngineNode({ ...base, configured: '', probe });
    assert.ok(r.ok && r.runtime.path === '/b/bin/node' && r.source === 'PATH');
    const none = await resolveEngineNode({ ...base, configured: '', probe: async () => abiMismatch('v22.3.0', 127) });
    assert.ok(!none.ok);
    if (!none.ok) {
      assert.match(none.problem, /\/a\/bin\/node is Node v22\.3\.0.*; \/b\/bin\/node is Node v22\.3\.0/);
      assert.match(none.fix, /Install Node\.js 20, or set "aries\.nodePath"/);
    }
  });

  it('falls back to the extension host only when it is a plain Node (code-server), never Electron', async () => {
    const empty = { ...base, pathEnv: '', configured: '' };
    const electron = await resolveEngineNode({ ...empty, probe: async () => ok() });
    assert.ok(!electron.ok && /no `node` was found on PATH/.test(electron.problem));
    const plain = await resolveEngineNode({ ...empty, host: { execPath: '/srv/node', electron: false }, probe: async () => ok() });
    assert.ok(plain.ok && plain.source === 'extension host' && plain.runtime.path === '/srv/node');
  });

  it('probes a real Node by loading the real better-sqlite3', async () => {
    const r = await probeNode(join(REPO, 'node_modules/better-sqlite3'))(process.execPath);
    assert.deepEqual(r, { version: process.version, abi: Number(process.versions.modules), sqlite: 'ok' });
    const missing = await probeNode(join(REPO, 'node_modules/better-sqlite3'))('/definitely/not/node');
    assert.ok('error' in missing);
  });
});
