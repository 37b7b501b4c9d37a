/** `tend install` / `tend uninstall`: the systemd unit that runs `tend watch` for a project. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCommand, renderInstall } from '../../src/cli/commands/install.js';
import { renderUninstall, uninstallCommand } from '../../src/cli/commands/uninstall.js';
import { systemdWord, unitText } from '../../src/systemd/unit.js';

function setup() {
  const cwd = mkdtempSync(join(tmpdir(), 'tend inst-'));
  writeFileSync(join(cwd, 'tend.yaml'), 'name: demo\nservices:\n  web:\n    image: debian:12\n');
  const config = mkdtempSync(join(tmpdir(), 'tend-cfg-'));
  const env = { ...process.env, XDG_CONFIG_HOME: config, TEND_STATE_DIR: join(cwd, 'state') };
  const ran: string[][] = [];
  return { cwd, config, env, ran, run: async (argv: string[]) => void ran.push(argv) };
}

test('install writes a user unit that runs tend watch for the project and leaves VMs running on stop', async () => {
  const s = setup();
  const r = await installCommand({ cwd: s.cwd, env: s.env, enable: true, run: s.run, tend: ['/usr/bin/node', '/opt/tend/main.js'] });
  assert.match(r.unit, /^tend-demo-[0-9a-f]{8}\.service$/);
  assert.equal(r.path, join(s.config, 'systemd', 'user', r.unit));
  const text = readFileSync(r.path, 'utf8');
  assert.match(
    text,
    new RegExp(
      `^ExecStart=/usr/bin/node /opt/tend/main.js --json --state-dir "${join(s.cwd, 'state')}" -f "${join(s.cwd, 'tend.yaml')}" watch$`,
      'm',
    ),
  );
  assert.match(text, /^WorkingDirectory="/m);
  assert.match(text, /^KillMode=process$/m);
  assert.match(text, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(text, /^WantedBy=default.target$/m);
  assert.deepEqual(s.ran, [
    ['systemctl', '--user', 'daemon-reload'],
    ['systemctl', '--user', 'enable', '--now', r.unit],
  ]);
  assert.match(renderInstall(r), /enabled it/);

  const u = await uninstallCommand({ cwd: s.cwd, env: s.env, run: s.run });
  assert.equal(existsSync(r.path), false);
  assert.deepEqual(s.ran.slice(2), [
    ['systemctl', '--user', 'disable', '--now', r.unit],
    ['systemctl', '--user', 'daemon-reload'],
  ]);
  assert.match(renderUninstall(u), /removed/);
});

test('--dry-run writes nothing and runs nothing; --system targets multi-user.target as the current user', async () => {
  const s = setup();
  const r = await installCommand({ cwd: s.cwd, env: s.env, system: true, dryRun: true, run: s.run, tend: ['/usr/bin/tend'] });
  assert.equal(r.path, `/etc/systemd/system/${r.unit}`);
  assert.equal(existsSync(r.path), false);
  assert.deepEqual(s.ran, []);
  assert.match(r.text, /^User=\S+$/m);
  assert.match(r.text, /^WantedBy=multi-user.target$/m);
  assert.match(renderInstall(r), /not written: --dry-run/);
  assert.deepEqual(r.commands, [['systemctl', 'daemon-reload']]);
});

test('systemd words: spaces quoted, % and $ escaped', () => {
  assert.equal(systemdWord('/a/b'), '/a/b');
  assert.equal(systemdWord('/my dir/x'), '"/my dir/x"');
  assert.equal(systemdWord('100%'), '100%%');
  assert.equal(systemdWord('$HOME'), '"$$HOME"');
  assert.match(
    unitText({
      scope: 'user',
      projectName: 'p',
      projectDir: '/p',
      files: ['/p/tend.yaml'],
      stateDir: '/s',
      tend: ['tend'],
      watchArgs: ['--prune'],
    }),
    /watch --prune$/m,
  );
});
