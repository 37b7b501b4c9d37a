/**
 * Errors that say what to do next (issue 14 §4), through the built CLI, in human and --json form:
 * a state folder the user cannot write and `install --system` without root (run as `nobody`),
 * QEMU missing at `up`, `image rm` of an unknown image, commander's usage errors, and downloads
 * through HTTP(S)_PROXY / NO_PROXY (a local forward proxy that also tunnels CONNECT, in front of
 * local HTTP and HTTPS image servers), and an unreachable network naming `tend image build`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, ensureBuilt, project } from './cli-harness.js';

const fakeDir = fileURLToPath(new URL('../fake-qemu/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tend-next-'));
let image: Buffer;
const servers: (http.Server | https.Server)[] = [];
/** what the proxy was asked: "GET http://..." or "CONNECT host:port" */
const proxied: string[] = [];
let plainUrl = '';
let tlsUrl = '';
let proxyUrl = '';
let certFile = '';

async function listen(s: http.Server | https.Server): Promise<number> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const serveImage = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  if (req.url !== '/base.qcow2') {
    res.statusCode = 404;
    return void res.end();
  }
  res.setHeader('content-length', image.length);
  res.end(image);
};

before(async () => {
  ensureBuilt();
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'base.qcow2'), '1G']);
  image = readFileSync(join(work, 'base.qcow2'));
  certFile = join(work, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(work, 'key.pem'), '-out', certFile,
  ], { stdio: 'ignore' }); // prettier-ignore
  plainUrl = `http://127.0.0.1:${await listen(http.createServer(serveImage))}/base.qcow2`;
  const tls = https.createServer({ key: readFileSync(join(work, 'key.pem')), cert: readFileSync(certFile) }, serveImage);
  // by name: a certificate for an IP address is not what a proxied TLS client checks (SNI takes names)
  tlsUrl = `https://localhost:${await listen(tls)}/base.qcow2`;
  // a forward proxy: absolute-URI GETs for http, CONNECT tunnels for https
  const proxy = http.createServer((req, res) => {
    proxied.push(`GET ${req.url}`);
    const up = http.get(req.url ?? '', { headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
  });
  proxy.on('connect', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
    proxied.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const up = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host, () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  proxyUrl = `http://127.0.0.1:${await listen(proxy)}`;
});

after(() => {
  for (const s of servers) {
    (s as http.Server).closeAllConnections?.();
    s.close();
  }
});

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI, asynchronously (this process serves the images); `as`: run as this uid/gid. */
function tend(args: string[], cwd: string, env: NodeJS.ProcessEnv, as?: number): Promise<Out> {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ['NODE_OPTIONS', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY'])
    if (env[k] === undefined) delete full[k];
  const argv = [process.execPath, CLI, ...args];
  const child =
    as === undefined
      ? spawn(argv[0], argv.slice(1), { cwd, env: full })
      : spawn('setpriv', [`--reuid=${as}`, `--regid=${as}`, '--clear-groups', ...argv], { cwd, env: { ...full, HOME: work } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A project folder (and its files) anyone may read: `nobody` runs tend in it. */
function openProject(yaml: string): { cwd: string; stateDir: string } {
  const p = project({ 'tend.yaml': yaml });
  chmodSync(p.cwd, 0o755);
  chmodSync(join(p.cwd, 'tend.yaml'), 0o644);
  return p;
}

/** Who runs the permission tests: `nobody` as root (CI), else this user against a folder made read-only. */
const NOBODY = process.getuid?.() === 0 ? 65534 : undefined;

test('a state folder the user cannot write: the path, and --state-dir or chown as the way out (human and --json)', async () => {
  const p = openProject(`name: perm\nservices:\n  web:\n    image: ${plainUrl}\n`);
  const locked = join(p.stateDir, 'locked');
  mkdirSync(locked, { mode: NOBODY === undefined ? 0o500 : 0o700 });
  const env = { TEND_STATE_DIR: join(locked, 'state') };
  const r = await tend(['up'], p.cwd, env, NOBODY);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`tend: cannot (create|access) ${locked}/state\\S*: permission denied \\(EACCES\\)`));
  assert.match(
    r.stderr,
    /\n {2}next: tend's state folder \S+ is not writable for you: pass --state-dir DIR \(or set TEND_STATE_DIR\).*sudo chown -R/,
  );
  const j = await tend(['up', '--json'], p.cwd, env, NOBODY);
  const err = (JSON.parse(j.stderr) as { error: { reason: string; message: string; next: string; exitCode: number } }).error;
  assert.equal(err.reason, 'PermissionDenied');
  assert.equal(err.exitCode, 1);
  assert.match(err.message, /permission denied \(EACCES\)/);
  assert.match(err.next, /--state-dir DIR/);
});

test('`install --system` without root: sudo, or a user unit', async () => {
  const p = openProject(`name: sys\nservices:\n  web:\n    image: ${plainUrl}\n`);
  chmodSync(p.stateDir, 0o755);
  const state = join(p.stateDir, 'mine');
  mkdirSync(state);
  if (NOBODY !== undefined) execFileSync('chown', [String(NOBODY), state]);
  const r = await tend(['install', '--system'], p.cwd, { TEND_STATE_DIR: state }, NOBODY);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /tend: cannot (create|access) \/etc\/systemd\/system\S*: permission denied \(EACCES\)/);
  assert.match(
    r.stderr,
    /next: a system unit needs root: run `sudo tend install --system`, or use a user unit: `tend install` \(without --system\)/,
  );
  const j = await tend(['install', '--system', '--json'], p.cwd, { TEND_STATE_DIR: state }, NOBODY);
  assert.match((JSON.parse(j.stderr) as { error: { next: string } }).error.next, /sudo tend install --system/);
});

test('qemu-system-x86_64 missing at `up`: the install command doctor knows', async () => {
  const p = project({ 'tend.yaml': 'name: noqemu\nservices:\n  web:\n    image: ./base.qcow2\n    accel: tcg\n' });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(p.cwd, 'base.qcow2'), '1G']);
  const bin = mkdtempSync(join(work, 'bin-'));
  symlinkSync(execFileSync('sh', ['-c', 'command -v qemu-img'], { encoding: 'utf8' }).trim(), join(bin, 'qemu-img'));
  const env = { PATH: bin, TEND_STATE_DIR: p.stateDir };
  const r = await tend(['up'], p.cwd, env);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /web: Failed — web: qemu-system-x86_64 is not installed \(not found on PATH\); next: install it: sudo apt-get install qemu-system-x86/,
  );
  const j = await tend(['up', '--json'], p.cwd, env);
  const out = JSON.parse(j.stdout) as { vms: { web: { error: string } } };
  assert.match(out.vms.web.error, /apt-get install qemu-system-x86.*tend doctor/);
  const doctor = await tend(['doctor', '--json'], p.cwd, env);
  assert.match(doctor.stdout, /qemu-system-x86_64 not found on PATH \(apt-get install qemu-system-x86\)/);
});

test('`image rm` of an image that is not stored exits 5 like `inspect`, with the next step', async () => {
  const p = project({});
  for (const verb of ['rm', 'inspect']) {
    const r = await tend(['image', verb, 'nothing:1'], p.cwd, { TEND_STATE_DIR: p.stateDir });
    assert.equal(r.code, 5, `${verb}: ${r.stderr}`);
    assert.match(
      r.stderr,
      /tend: no stored image "nothing:1"\n {2}next: `tend image list` shows the stored images; `tend image pull nothing:1` adds it/,
    );
    const j = await tend(['image', verb, 'nothing:1', '--json'], p.cwd, { TEND_STATE_DIR: p.stateDir });
    const err = (JSON.parse(j.stderr) as { error: { reason: string; exitCode: number; next: string } }).error;
    assert.deepEqual([err.reason, err.exitCode], ['ImageNotFound', 5]);
    assert.match(err.next, /tend image list/);
  }
});

test("commander's own usage errors: one JSON object with --json, commander's text without", async () => {
  const p = project({});
  const j = await tend(['up', '--bogus', '--json'], p.cwd, { TEND_STATE_DIR: p.stateDir });
  assert.equal(j.code, 2);
  const err = (JSON.parse(j.stderr) as { error: Record<string, unknown> }).error;
  assert.deepEqual(err, { reason: 'UsageUnknownOption', message: "unknown option '--bogus'", next: 'tend help up', exitCode: 2 });
  const missing = await tend(['image', 'inspect', '--json'], p.cwd, { TEND_STATE_DIR: p.stateDir });
  assert.equal(missing.code, 2);
  assert.equal((JSON.parse(missing.stderr) as { error: { reason: string } }).error.reason, 'UsageMissingArgument');
  const unknown = await tend(['--json', 'frobnicate'], p.cwd, { TEND_STATE_DIR: p.stateDir });
  assert.equal(unknown.code, 2);
  assert.equal((JSON.parse(unknown.stderr) as { error: { next: string } }).error.next, 'tend help');
  const human = await tend(['up', '--bogus'], p.cwd, { TEND_STATE_DIR: p.stateDir });
  assert.equal(human.code, 2);
  assert.match(human.stderr, /^error: unknown option '--bogus'/);
});

test('downloads honour HTTP_PROXY, HTTPS_PROXY (CONNECT) and NO_PROXY', async () => {
  proxied.length = 0;
  const viaHttp = await tend(['image', 'pull', plainUrl], work, { TEND_STATE_DIR: mkdtempSync(join(work, 's-')), HTTP_PROXY: proxyUrl });
  assert.equal(viaHttp.code, 0, viaHttp.stderr);
  assert.ok(proxied.includes(`GET ${plainUrl}`), proxied.join('\n'));

  proxied.length = 0;
  const viaTls = await tend(['image', 'pull', tlsUrl], work, {
    TEND_STATE_DIR: mkdtempSync(join(work, 's-')),
    HTTPS_PROXY: proxyUrl,
    NODE_EXTRA_CA_CERTS: certFile,
  });
  assert.equal(viaTls.code, 0, viaTls.stderr);
  assert.ok(proxied.includes(`CONNECT ${new URL(tlsUrl).host}`), proxied.join('\n'));

  proxied.length = 0;
  const direct = await tend(['image', 'pull', plainUrl], work, {
    TEND_STATE_DIR: mkdtempSync(join(work, 's-')),
    HTTP_PROXY: proxyUrl,
    NO_PROXY: '127.0.0.1',
  });
  assert.equal(direct.code, 0, direct.stderr);
  assert.deepEqual(proxied, [], 'NO_PROXY hosts are reached directly');
});

test('unreachable network: the proxy to check, and `tend image build debian:12` for a buildable catalog image', async () => {
  const dead = `http://127.0.0.1:${await new Promise<number>((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => r(port));
    });
  })}`;
  const pull = await tend(['image', 'pull', 'https://images.example.invalid/x.qcow2', '--json'], work, {
    TEND_STATE_DIR: mkdtempSync(join(work, 's-')),
    HTTPS_PROXY: dead,
  });
  assert.equal(pull.code, 6, pull.stderr);
  const err = (JSON.parse(pull.stderr.trim().split('\n').at(-1) ?? '') as { error: { reason: string; message: string; next: string } })
    .error;
  assert.equal(err.reason, 'DownloadFailed');
  assert.match(err.message, new RegExp(`via proxy ${dead}.*ECONNREFUSED`));
  assert.match(err.next, new RegExp(`check the proxy ${dead} \\(HTTPS_PROXY/HTTP_PROXY; hosts in NO_PROXY are reached directly\\)`));

  const p = project({ 'tend.yaml': 'name: offline\nservices:\n  web:\n    image: debian:12\n    accel: tcg\n' });
  const up = await tend(['up'], p.cwd, {
    PATH: `${fakeDir}:${process.env.PATH ?? ''}`,
    TEND_STATE_DIR: p.stateDir,
    HTTPS_PROXY: dead,
  });
  assert.equal(up.code, 1, up.stdout + up.stderr);
  assert.match(
    up.stdout,
    /web: Failed — cannot download debian:12 \(.*ECONNREFUSED.*\); build it locally instead \(works offline\): tend image build debian:12/,
  );
});
