import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProject } from '../../src/load/project.js';
import { formatDiagnostic } from '../../schemas/diagnostic.js';

const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function load(name: 'VMFile.kdl' | 'tend.yaml', text: string) {
  const d = mkdtempSync(join(tmpdir(), 'tend-display-'));
  dirs.push(d);
  writeFileSync(join(d, name), text);
  return loadProject([join(d, name)]);
}

const kdl = (body: string) => `vm "web" {\n    image "debian:12"\n${body}}\n`;
const yaml = (vm: string) => `services:\n  web:\n    image: debian:12\n${vm ? `    vm:\n${vm}` : ''}`;

test('video and graphics from VMFile.kdl and tend.yaml; the default is the standard VGA, no graphics; std means vga', async () => {
  const cases: [string, 'VMFile.kdl' | 'tend.yaml', string, string][] = [
    ['', 'VMFile.kdl', 'vga', 'none'],
    ['', 'tend.yaml', 'vga', 'none'],
    ['    video "virtio"\n    graphics "spice"\n', 'VMFile.kdl', 'virtio', 'spice'],
    ['      video: qxl\n      graphics: vnc\n', 'tend.yaml', 'qxl', 'vnc'],
    ['    video "std"\n', 'VMFile.kdl', 'vga', 'none'],
    ['      video: std\n', 'tend.yaml', 'vga', 'none'],
    ['    video "none"\n', 'VMFile.kdl', 'none', 'none'],
    ['      video: cirrus\n', 'tend.yaml', 'cirrus', 'none'],
  ];
  for (const [body, file, video, graphics] of cases) {
    const r = await load(file, file === 'VMFile.kdl' ? kdl(body) : yaml(body));
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), [], `${file}: ${body}`);
    const vm = r.project?.vms[0];
    assert.equal(vm?.video, video, `${file}: ${body}`);
    assert.equal(vm?.graphics, graphics, `${file}: ${body}`);
  }
});

test('a wrong word is an error at its value, with what to write; graphics without video is an error at graphics', async () => {
  const k = await load('VMFile.kdl', kdl('    video "vmware"\n'));
  assert.equal(k.project, null);
  const kd = k.diagnostics[0];
  assert.deepEqual([kd.line, kd.column], [3, 11]);
  assert.match(kd.message, /video must be one of "none", "vga", "std", "virtio", "qxl", "cirrus", not "vmware"/);

  const y = await load('tend.yaml', yaml('      graphics: rdp\n'));
  assert.equal(y.project, null);
  assert.equal(y.diagnostics[0].line, 5);
  assert.match(formatDiagnostic(y.diagnostics[0]), /graphics/);

  for (const [file, text, line] of [
    ['VMFile.kdl', kdl('    video "none"\n    graphics "vnc"\n'), 4],
    ['tend.yaml', yaml('      video: none\n      graphics: spice\n'), 6],
  ] as const) {
    const r = await load(file, text);
    assert.equal(r.project, null, file);
    const d = r.diagnostics.find((x) => x.message.includes('there is no screen to show'));
    assert.ok(d, r.diagnostics.map(formatDiagnostic).join('\n'));
    assert.equal(d.line, line, file);
    assert.match(d.hint ?? '', /remove video none/);
  }
});
