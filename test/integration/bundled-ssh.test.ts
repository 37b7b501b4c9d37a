/**
 * The npm package carries ssh2 inside tend's bundle, without ssh2's optional native binding or
 * cpu-features (scripts/bundle-options.ts). This bundles tend's SSH client with the same options
 * into a folder outside the repo (no node_modules to fall back on) and runs commands through it
 * against a real OpenSSH server, so a bundle that lost a piece of ssh2 fails here, not on a user.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { BUNDLE_OPTIONS } from '../../scripts/bundle-options.js';
import { startTestSshd, type TestSshd } from '../helpers/sshd.js';
import type { sshExec as SshExec } from '../../src/ssh/exec.js';

let out = '';
let mod: { sshExec: typeof SshExec };

before(async () => {
  out = await mkdtemp(join(tmpdir(), 'tend-bundle-ssh-'));
  await build({
    ...BUNDLE_OPTIONS,
    entryPoints: { exec: join(import.meta.dirname, '..', '..', 'src', 'ssh', 'exec.ts') },
    outdir: out,
  });
  mod = (await import(pathToFileURL(join(out, 'exec.js')).href)) as typeof mod;
});
after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

// OpenSSH's default first choice (chacha20: ssh2's WebAssembly poly1305 without the binding) and AES-GCM
for (const cipher of ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr']) {
  test(`ssh2 inside the bundle (no native binding, no node_modules) runs commands on OpenSSH over ${cipher}`, async () => {
    for (const f of await readdir(out)) assert.ok(!f.endsWith('.node'), `${f}: a native module was copied`);
    const sshd: TestSshd = await startTestSshd({ config: [`Ciphers ${cipher}`] });
    try {
      const target = { host: sshd.host, port: sshd.port, user: userInfo().username, privateKey: sshd.key };
      const r = await mod.sshExec({ ...target, command: 'echo hello-$((40+2)); echo err >&2; exit 7', timeoutMs: 20_000 });
      assert.equal(r.stdout.trim(), 'hello-42');
      assert.equal(r.stderr.trim(), 'err');
      assert.equal(r.code, 7);
      // a larger transfer runs the cipher and MAC over many packets
      const big = await mod.sshExec({ ...target, command: 'head -c 300000 /dev/zero | tr "\\0" x', timeoutMs: 20_000 });
      assert.equal(big.stdout.length, 300_000);
    } finally {
      await sshd.dispose();
    }
  });
}
