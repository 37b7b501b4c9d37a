/**
 * End to end, on the stock-GRUB flavour of the Debian 12 image (scripts/build-debian-image.sh
 * --flavour stock: Debian's stock grub-pc configuration, GRUB's graphical terminal, no serial
 * GRUB terminal). Issue 11: under `-vga none` this image never gets past GRUB (console.log stays
 * empty, SSH never answers). With tend's defaults it must reach Ready. One boot, every check:
 * - `tend up` of `image "/path"` and nothing else reaches Ready; QEMU has the default VGA;
 * - the readiness hint: GRUB's menu shows on the screen only, so the serial console is silent
 *   for its 5 s timeout; with the hint threshold at 3 s the progress line says so and points at
 *   the causes and at `tend logs NAME --console`;
 * - the serial console then has the guest's output (past GRUB);
 * - `sudo` in the guest resolves the host name (the seed keeps /etc/hosts right), and the check
 *   is shown to be able to fail: without the 127.0.1.1 line, sudo complains.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { findStockImage, runCli, tempProject, type TempProject } from './helpers.js';

async function qemuCmdlines(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (/qemu-system/.test(cmd.split('\0')[0] ?? '') && cmd.includes(needle)) out.push(cmd.split('\0').join(' '));
  }
  return out;
}

test(
  "a stock Debian image (GRUB's graphical terminal) reaches Ready with tend's defaults; sudo resolves the host",
  { timeout: 1_500_000 },
  async (t) => {
    const image = await findStockImage();
    const p: TempProject = await tempProject({ 'VMFile.kdl': `vm "stock" {\n    image "${image}"\n}\n` });
    t.after(() => p.cleanup());
    const cli = (args: string[], env: Record<string, string> = {}) =>
      runCli(args, { cwd: p.dir, stateDir: p.stateDir, env, timeoutMs: 1_200_000 });

    const t0 = Date.now();
    const up = await cli(['up'], { TEND_CONSOLE_HINT_AFTER: '3s' });
    const took = Math.round((Date.now() - t0) / 1000);
    assert.equal(up.code, 0, `tend up exited ${up.code} after ${took} s\nstdout: ${up.stdout}\nstderr: ${up.stderr}`);
    t.diagnostic(`tend up of the stock image: Ready in ${took} s`);

    // the default video device is what got it past GRUB
    const cmd = await qemuCmdlines(p.stateDir);
    assert.equal(cmd.length, 1, `one QEMU: ${cmd.join('\n')}`);
    assert.match(cmd[0], / -device VGA /);
    assert.match(cmd[0], / -vga none /);

    // the console hint fired while GRUB's menu was on the screen, and says where to look
    assert.match(up.stderr, /no console output and no SSH banner for \d+ s/);
    assert.match(up.stderr, /the screen: GRUB and the kernel.*firmware.*image/s);
    assert.match(up.stderr, /tend logs stock --console/);

    // past GRUB: the kernel's serial console has the guest's output
    const logs = await cli(['logs', 'stock', '--console']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /login:|Cloud-init/, `console log:\n${logs.stdout.slice(-2000)}`);

    // sudo resolves the host name: no "unable to resolve host" on stderr
    const sudo = await cli(['exec', 'stock', '--', 'sudo', 'hostname']);
    assert.equal(sudo.code, 0, sudo.stderr);
    assert.equal(sudo.stdout.trim(), 'stock');
    assert.doesNotMatch(sudo.stderr, /unable to resolve host/);
    const hosts = await cli(['exec', 'stock', '--', 'cat', '/etc/hosts']);
    assert.match(hosts.stdout, /^127\.0\.1\.1\s.*\bstock\b/m, hosts.stdout);

    // the same check fails without that line (the image's own /etc/hosts names only localhost)
    const broken = await cli(['exec', 'stock', '--', 'sh', '-c', "sudo sed -i '/^127\\.0\\.1\\.1/d' /etc/hosts; sudo hostname"]);
    assert.match(broken.stderr, /unable to resolve host stock/);

    const down = await cli(['down', '--destroy']);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await qemuCmdlines(p.stateDir), []);
  },
);
