/**
 * `libvirt` of a vms.yml entity. `devices.video[0].model` and `devices.graphics[0].type` become the
 * canonical `video` / `graphics` (both backends honour them); `devices.channels`, `rng` and
 * `memballoon` become domain XML snippets, like `snippets` itself (the libvirt backend merges them
 * into the domain; the QEMU backend has no domain). Everything else ov's LibvirtDomain has is
 * named in a warning.
 */
import { didYouMean } from '../../schemas/names.js';
import { isObj, readMap, report, show, warn, type Node, type Obj, type VmsField } from './vms-yml-ctx.js';

/** An XML attribute value, escaped. */
const attr = (v: unknown): string =>
  String(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
const text = (v: unknown): string => String(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function addSnippet(n: Node, xml: string, path: readonly (string | number)[]): void {
  n.draft.push('/libvirt/snippets', xml, n.ctx.loc.value(path));
}

const VIDEO = ['virtio', 'qxl', 'cirrus', 'vga', 'none'];
const GRAPHICS = ['spice', 'vnc'];

/** Items of a device list; a single map is taken as a list of one. */
function items(n: Node, key: string): { item: Obj; path: readonly (string | number)[] }[] {
  const v = n.raw[key];
  const p = [...n.path, key];
  const arr = Array.isArray(v) ? v : isObj(v) ? [v] : null;
  if (!arr) {
    report(n.ctx, p, `devices.${key} of vm ${n.vm} must be a list of maps, not ${show(v)}`);
    return [];
  }
  const out: { item: Obj; path: readonly (string | number)[] }[] = [];
  arr.forEach((x, i) => {
    const ip = Array.isArray(v) ? [...p, i] : p;
    if (isObj(x)) out.push({ item: x, path: ip });
    else report(n.ctx, ip, `item ${i + 1} of devices.${key} of vm ${n.vm} must be a map, not ${show(x)}`);
  });
  return out;
}

function checkKeys(n: Node, item: Obj, path: readonly (string | number)[], what: string, known: string[]): boolean {
  let ok = true;
  for (const k of Object.keys(item)) {
    if (known.includes(k)) continue;
    const guess = didYouMean(k, known);
    report(
      n.ctx,
      [...path, k],
      `unknown key \`${k}\` in ${what} of vm ${n.vm}${guess ? `; did you mean \`${guess}\`?` : ''}`,
      guess ? undefined : `known keys: ${known.join(', ')}`,
      'key',
    );
    ok = false;
  }
  return ok;
}

function video(n: Node): void {
  const list = items(n, 'video');
  list.forEach(({ item, path }, i) => {
    if (!checkKeys(n, item, path, 'a video device', ['model', 'vram', 'heads', 'accel3d'])) return;
    if (i > 0) {
      warn(n.ctx, path, `video device ${i + 1} of vm ${n.vm} is not applied by tend: a VM has one video device`);
      return;
    }
    const m = item.model;
    if (typeof m !== 'string' || !VIDEO.includes(m)) {
      const guess = typeof m === 'string' ? didYouMean(m, VIDEO) : undefined;
      report(
        n.ctx,
        [...path, 'model'],
        `video model of vm ${n.vm} must be one of ${VIDEO.join(', ')}, not ${show(m)}`,
        guess ? `did you mean ${guess}?` : undefined,
      );
      return;
    }
    n.draft.set('/video', m, n.ctx.loc.value([...path, 'model']));
    if (item.heads !== undefined && item.heads !== 1)
      warn(n.ctx, [...path, 'heads'], `video heads ${show(item.heads)} of vm ${n.vm} is not applied by tend: the display has one head`);
    if (item.accel3d !== undefined && item.accel3d !== false)
      warn(
        n.ctx,
        [...path, 'accel3d'],
        `video accel3d of vm ${n.vm} is not applied by tend: no 3D acceleration (it needs a host GPU and virgl)`,
      );
    if (item.vram !== undefined)
      warn(n.ctx, [...path, 'vram'], `video vram of vm ${n.vm} is not applied by tend: the ${m} device keeps QEMU's default memory size`);
  });
}

function graphics(n: Node): void {
  items(n, 'graphics').forEach(({ item, path }, i) => {
    if (!checkKeys(n, item, path, 'a graphics device', ['type', 'autoport', 'listen', 'port'])) return;
    if (i > 0) {
      warn(n.ctx, path, `graphics device ${i + 1} of vm ${n.vm} is not applied by tend: a VM has one remote display`);
      return;
    }
    const t = item.type;
    if (typeof t !== 'string' || !GRAPHICS.includes(t)) {
      const guess = typeof t === 'string' ? didYouMean(t, GRAPHICS) : undefined;
      report(
        n.ctx,
        [...path, 'type'],
        `graphics type of vm ${n.vm} must be spice or vnc, not ${show(t)}`,
        guess ? `did you mean ${guess}?` : undefined,
      );
      return;
    }
    n.draft.set('/graphics', t, n.ctx.loc.value([...path, 'type']));
    if (item.port !== undefined && item.port !== -1)
      warn(
        n.ctx,
        [...path, 'port'],
        `graphics port of vm ${n.vm} is not applied by tend: it picks a free port on 127.0.0.1 and keeps it (tend ps shows it)`,
      );
    const listens = Array.isArray(item.listen) ? item.listen : item.listen === undefined ? [] : [item.listen];
    const local = (l: unknown): boolean =>
      l === '127.0.0.1' ||
      l === 'localhost' ||
      (isObj(l) && l.type === 'address' && (l.address === '127.0.0.1' || l.address === undefined));
    if (!listens.every(local))
      warn(
        n.ctx,
        [...path, 'listen'],
        `graphics listen of vm ${n.vm} is not applied by tend: displays listen on a TCP port of 127.0.0.1 only`,
        'reach it from another machine through an SSH tunnel (ssh -L)',
      );
  });
}

function channels(n: Node): void {
  items(n, 'channels').forEach(({ item, path }) => {
    if (!checkKeys(n, item, path, 'a channel', ['type', 'name'])) return;
    if (typeof item.type !== 'string' || !['spicevmc', 'unix', 'pty'].includes(item.type)) {
      report(n.ctx, [...path, 'type'], `channel type of vm ${n.vm} must be spicevmc, unix or pty, not ${show(item.type)}`);
      return;
    }
    if (typeof item.name !== 'string' || item.name === '') {
      report(n.ctx, path, `a channel of vm ${n.vm} needs a name`, 'write e.g. {type: spicevmc, name: com.redhat.spice.0}');
      return;
    }
    addSnippet(n, `<channel type='${attr(item.type)}'><target type='virtio' name='${attr(item.name)}'/></channel>`, path);
  });
}

function rng(n: Node): void {
  items(n, 'rng').forEach(({ item, path }) => {
    if (!checkKeys(n, item, path, 'an rng device', ['model', 'backend'])) return;
    const model = item.model ?? 'virtio';
    const backend = item.backend ?? '/dev/urandom';
    if (model !== 'virtio' || typeof backend !== 'string' || !backend.startsWith('/dev/')) {
      report(n.ctx, path, `an rng device of vm ${n.vm} must be {model: virtio, backend: /dev/urandom or /dev/random}`);
      return;
    }
    addSnippet(n, `<rng model='virtio'><backend model='random'>${text(backend)}</backend></rng>`, path);
  });
}

function memballoon(n: Node): void {
  const v = n.raw.memballoon;
  const p = [...n.path, 'memballoon'];
  if (!isObj(v) || !checkKeys(n, v, p, 'memballoon', ['model'])) {
    if (!isObj(v)) report(n.ctx, p, `devices.memballoon of vm ${n.vm} must be a map like {model: virtio}, not ${show(v)}`);
    return;
  }
  const model = v.model;
  if (typeof model !== 'string' || !['virtio', 'none'].includes(model)) {
    report(n.ctx, [...p, 'model'], `memballoon model of vm ${n.vm} must be virtio or none, not ${show(model)}`);
    return;
  }
  addSnippet(n, `<memballoon model='${model}'/>`, p);
}

const fn = (key: string, f: (n: Node) => void): VmsField => ({
  key,
  pointer: '',
  read: (n) => {
    f(n);
    return undefined;
  },
});

const DEVICE_FIELDS: readonly VmsField[] = [
  fn('video', video),
  fn('graphics', graphics),
  fn('channels', channels),
  fn('rng', rng),
  fn('memballoon', memballoon),
];

/** ov LibvirtDomain device lists tend does not turn into anything. */
const OTHER = 'write the element as raw XML in libvirt.snippets instead';
const DEVICES_IGNORED = Object.fromEntries(
  [
    'disks',
    'interfaces',
    'filesystems',
    'hostdevs',
    'inputs',
    'sounds',
    'watchdog',
    'tpm',
    'controllers',
    'serials',
    'consoles',
    'redirdevs',
    'smartcards',
    'hubs',
    'panic',
    'shmems',
    'iommu',
    'vsock',
  ].map((k) => [k, OTHER]),
);

function snippets(n: Node): void {
  const v = n.raw.snippets;
  const p = [...n.path, 'snippets'];
  if (!Array.isArray(v)) {
    report(n.ctx, p, `libvirt.snippets of vm ${n.vm} must be a list of XML strings, not ${show(v)}`);
    return;
  }
  const seen = new Set<string>();
  v.forEach((s, i) => {
    const sp = [...p, i];
    if (typeof s !== 'string' || !/^\s*<[A-Za-z][\w.-]*[\s/>]/.test(s) || !/>\s*$/.test(s)) {
      report(
        n.ctx,
        sp,
        `item ${i + 1} of libvirt.snippets of vm ${n.vm} is not an XML element`,
        `write it as one element, e.g. "<channel type='unix'>...</channel>"`,
      );
      return;
    }
    // ov deduplicates snippets by exact string
    if (seen.has(s.trim())) return;
    seen.add(s.trim());
    addSnippet(n, s.trim(), sp);
  });
}

export function libvirt(n: Node): void {
  const v = n.raw.libvirt;
  const p = [...n.path, 'libvirt'];
  if (!isObj(v)) {
    report(n.ctx, p, `libvirt of vm ${n.vm} must be a map of keys, not ${show(v)}`);
    return;
  }
  const node: Node = { ...n, raw: v, path: p };
  const other = 'tend builds this part of the domain itself; write raw XML in libvirt.snippets if you need it';
  readMap(
    node,
    [
      fn('devices', (m) => {
        const d = m.raw.devices;
        if (!isObj(d)) {
          report(m.ctx, [...m.path, 'devices'], `libvirt.devices of vm ${m.vm} must be a map of keys, not ${show(d)}`);
          return;
        }
        readMap({ ...m, raw: d, path: [...m.path, 'devices'] }, DEVICE_FIELDS, DEVICES_IGNORED);
      }),
      fn('snippets', snippets),
    ],
    Object.fromEntries(
      [
        'features',
        'cpu',
        'clock',
        'sysinfo',
        'launch_security',
        'memory_backing',
        'os',
        'pm',
        'on_crash',
        'on_reboot',
        'on_poweroff',
        'metadata',
      ].map((k) => [k, other]),
    ),
  );
}
