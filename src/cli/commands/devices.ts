/** `tend devices [--gpu]` (holos): the host's PCI devices, for `devices: [{ pci: ... }]`. */
import { EXIT } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';
import { table } from '../output.js';
import { listPciDevices, type PciDevice } from '../../host/pci.js';

export function devicesCommand(o: { gpu?: boolean; sysfs?: string }): PciDevice[] {
  const all = listPciDevices(o.sysfs);
  return o.gpu ? all.filter((d) => d.kind === 'display' || d.kind === 'accelerator') : all;
}

export function renderDevices(ds: PciDevice[]): string {
  if (ds.length === 0) return 'no PCI devices found (is /sys mounted?)';
  const rows = ds.map((d) => [
    d.address,
    d.kind,
    `${d.vendor}:${d.device}`,
    d.driver ?? '-',
    d.iommuGroup === null ? '-' : String(d.iommuGroup),
  ]);
  const note = ds.some((d) => d.iommuGroup !== null)
    ? 'pass a device with devices: [{ pci: "ADDRESS" }]; every device of its IOMMU group must be bound to vfio-pci'
    : 'no IOMMU groups: turn the IOMMU on (intel_iommu=on / amd_iommu=on) before passing devices through';
  return `${table(['ADDRESS', 'KIND', 'VENDOR:DEVICE', 'DRIVER', 'IOMMU'], rows)}\n${note}`;
}

export const command: CliCommand = {
  name: 'devices',
  description: "the host's PCI devices (address, kind, driver, IOMMU group) for passthrough",
  examples: ['tend devices', 'tend devices --gpu --json'],
  configure: (c) => c.option('--gpu', 'only display controllers and accelerators'),
  async run({ g, opts, io }) {
    const sysfs = (g.env ?? process.env).TEND_SYSFS;
    const ds = devicesCommand({ gpu: opts.gpu === true, ...(sysfs ? { sysfs } : {}) });
    if (g.json) io.json({ devices: ds });
    else io.out(renderDevices(ds));
    return EXIT.ok;
  },
};
