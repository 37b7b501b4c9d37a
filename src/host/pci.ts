/**
 * PCI devices of the host, read from sysfs (/sys/bus/pci/devices): what `tend devices` lists
 * for `devices: [{ pci: ... }]` (holos' `holos devices`). The sysfs root is a parameter so tests
 * read a fake tree.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface PciDevice {
  /** "0000:01:00.0" */
  address: string;
  /** "0x030000" */
  classCode: string;
  /** "display", "network", ... from the class code's base class */
  kind: string;
  vendor: string;
  device: string;
  /** bound driver ("vfio-pci", "nvidia", ...), null when none */
  driver: string | null;
  /** IOMMU group number, null when the IOMMU is off */
  iommuGroup: number | null;
}

const BASE_CLASSES: Record<string, string> = {
  '00': 'unclassified',
  '01': 'storage',
  '02': 'network',
  '03': 'display',
  '04': 'multimedia',
  '05': 'memory',
  '06': 'bridge',
  '07': 'communication',
  '08': 'system',
  '09': 'input',
  '0c': 'serial-bus',
  '0d': 'wireless',
  '12': 'accelerator',
};

const read = (p: string): string | null => {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
};

const link = (p: string): string | null => {
  try {
    return basename(readlinkSync(p));
  } catch {
    return null;
  }
};

/** Every PCI device under `sysfs` (default /sys), sorted by address; [] when sysfs has none. */
export function listPciDevices(sysfs = '/sys'): PciDevice[] {
  const dir = join(sysfs, 'bus', 'pci', 'devices');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.sort().map((address) => {
    const d = join(dir, address);
    const classCode = read(join(d, 'class')) ?? '0x000000';
    const group = link(join(d, 'iommu_group'));
    return {
      address,
      classCode,
      kind: BASE_CLASSES[classCode.slice(2, 4).toLowerCase()] ?? 'other',
      vendor: read(join(d, 'vendor')) ?? '?',
      device: read(join(d, 'device')) ?? '?',
      driver: link(join(d, 'driver')),
      iommuGroup: group !== null && /^\d+$/.test(group) ? Number(group) : null,
    };
  });
}
