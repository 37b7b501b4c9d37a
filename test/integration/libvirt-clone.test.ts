/**
 * libvirt warm clones against the real libvirtd (qemu:///system; .ci/run starts it) with real
 * QEMU under TCG booting only its firmware (a blank disk: no guest OS, cheap, no image): what
 * a clone does when its template cannot be used. A template whose stream QEMU cannot load makes
 * `virsh restore` of the clone's save image fail: the clone is abandoned (one line), its disk
 * becomes a plain overlay over the base image and the domain boots; a template of another QEMU is
 * not restored at all. Either way no save image is left and no disk is backed by the template.
 * The restore itself, on a real guest, is test/e2e/libvirt.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { applyDefaults, type VmDraft } from '../../schemas/defaults.js';
import type { Project } from '../../schemas/model.js';
import { createLibvirtBackend } from '../../src/libvirt/backend.js';
import { domainName } from '../../src/libvirt/names.js';
import { portableDomainXml } from '../../src/libvirt/clone-xml.js';
import { templateKey } from '../../src/qemu/template-key.js';
import type { TemplateRecord } from '../../src/qemu/templates.js';
import { TEMPLATE_FILES, projectDir, templateDir, vmFile } from '../../src/state/paths.js';

const URI = 'qemu:///system';
let root: string;
let base: string;
const domains: string[] = [];

const virsh = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const r = await execa('virsh', ['-q', '-c', URI, ...args], { reject: false });
  return { code: r.exitCode ?? -1, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
};

before(async () => {
  const v = await virsh('version');
  assert.equal(v.code, 0, `libvirtd must answer on ${URI} (.ci/run starts it: scripts/libvirt-daemons.sh): ${v.err}`);
  root = await mkdtemp(join(tmpdir(), 'tend-lvclone-'));
  base = join(root, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
});

after(async () => {
  for (const d of domains) {
    await virsh('destroy', d);
    await virsh('undefine', d, '--nvram');
  }
  await rm(root, { recursive: true, force: true });
});

const backingOf = (disk: string): string | undefined =>
  (JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' })) as { 'backing-filename'?: string })[
    'backing-filename'
  ];

test(
  'a libvirt clone whose template cannot be restored boots a plain disk; one of another QEMU is not tried',
  { timeout: 300_000 },
  async () => {
    const stateRoot = join(root, 'state');
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push((JSON.parse(s) as { msg: string }).msg) });
    const backend = createLibvirtBackend({ stateRoot, uri: URI, termGraceMs: 3000, log });
    const draft = (name: string) =>
      ({ name, image: { kind: 'path', ref: base }, accel: 'tcg', memory: 128, cloudInit: null, warm: true, stopGracePeriod: 1 }) as VmDraft;
    const hypervisor = /Running hypervisor:\s*(.+)/.exec((await virsh('version')).out)?.[1]?.trim() ?? '';
    assert.ok(hypervisor);

    // the first warm VM gets a plain disk (no template yet); what it records pending is the image's id
    const first = applyDefaults(draft('first'));
    const other: Project = { name: 'lvcsrc', dir: join(root, 'o'), files: [], vms: [first], volumes: {} };
    domains.push(domainName(other, 'first'));
    await backend.prepare(other, first, { recreateDisk: false });
    const pending = JSON.parse(
      readFileSync(vmFile(projectDir(stateRoot, other.name, other.dir), 'first', 'templatePending'), 'utf8'),
    ) as TemplateRecord['image'];

    for (const [name, version, why] of [
      ['bad', hypervisor, /warm clone abandoned: libvirt could not restore its template \(.+\); the next start boots a fresh disk/],
      [
        'old',
        'QEMU 0.1.0',
        /warm template not used: QEMU changed \(template made with "QEMU 0\.1\.0", now ".+"\); booting with a fresh disk/,
      ],
    ] as const) {
      const vm = applyDefaults(draft(name));
      const project: Project = { name: `lvc${name}`, dir: join(root, name), files: [], vms: [vm], volumes: {} };
      const dom = domainName(project, name);
      domains.push(dom);
      const pd = projectDir(stateRoot, project.name, project.dir);
      // a template of its key (libvirt's: the connection is part of it), with a stream QEMU cannot load
      const key = templateKey(vm, pending.id, false, `libvirt ${URI}`);
      const tdir = templateDir(stateRoot, key);
      mkdirSync(tdir, { recursive: true });
      const frozen = join(tdir, TEMPLATE_FILES.disk);
      if (!existsSync(frozen)) execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, frozen]);
      writeFileSync(join(tdir, TEMPLATE_FILES.state), 'not a migration stream');
      const record = (xml: string): TemplateRecord => ({
        key,
        createdAt: Date.now(),
        from: { project: other.name, vm: 'first' },
        image: pending,
        qemuVersion: version,
        argv: [],
        stateBytes: 22,
        instanceId: 'i-first',
        hostname: 'first',
        user: 'tend',
        hostKeys: [],
        bootId: null,
        loginKey: false,
        libvirt: { uri: URI, xml, portable: portableDomainXml(xml) },
      });
      writeFileSync(join(tdir, TEMPLATE_FILES.record), JSON.stringify(record('<domain type="qemu"><name>x</name></domain>')));
      await backend.prepare(project, vm, { recreateDisk: false });
      assert.equal(backingOf(vmFile(pd, name, 'disk')), frozen, 'the clone is made over the template');
      // the template's XML is the domain's own (as defined), so only the stream (or the QEMU) is wrong
      writeFileSync(join(tdir, TEMPLATE_FILES.record), JSON.stringify(record(readFileSync(vmFile(pd, name, 'domainXml'), 'utf8'))));

      const r = await backend.start(project, vm);
      assert.equal(r.restored, undefined, `${name}: not reported restored`);
      assert.equal((await virsh('domstate', '--reason', dom)).out, 'running (booted)', `${name}: booted`);
      assert.ok(
        lines.some((l) => why.test(l)),
        `${name}: the line saying why: ${lines.join(' | ')}`,
      );
      assert.equal(backingOf(vmFile(pd, name, 'disk')), base, `${name}: a plain overlay over the base image`);
      assert.equal(existsSync(vmFile(pd, name, 'clone')), false, `${name}: no pending clone left`);
      assert.equal(existsSync(vmFile(pd, name, 'cloneImage')), false, `${name}: no save image left`);
      await backend.destroy(project, name);
    }
  },
);
