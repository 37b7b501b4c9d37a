/**
 * PCI passthrough (VFIO): the host checks (the QEMU arguments are buildArgv's, src/qemu/argv.ts) `tend doctor` runs for each declared device: the device exists, the IOMMU is on (the
 * device has an IOMMU group), every device of its group is bound to vfio-pci (or is a PCI
 * bridge, which may stay with pcieport), /dev/vfio/<group> exists and is accessible, and the ROM
 * file is readable. Untested on real hardware: this machine has no passthrough device; the
 * checks are tested against a fake sysfs tree.
 */
import { access, readdir, readlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import { basename, join } from 'node:path';
import type { VmSpec } from '../../schemas/model.js';

/** "01:00.0" -> "0000:01:00.0" (sysfs and QEMU spell the domain). */
export function fullPciAddress(pci: string): string {
  return (/^[0-9a-fA-F]{4}:/.test(pci) ? pci : `0000:${pci}`).toLowerCase();
}

export interface DeviceCheck {
  pci: string;
  ok: boolean;
  /** IOMMU group number, null when none */
  group: string | null;
  /** one line per problem, each saying what to do */
  problems: string[];
  /** devices of the group and their drivers */
  members: { pci: string; driver: string | null }[];
}

/** PCI class 0x0604xx: a PCI bridge (may stay bound to pcieport). */
async function isBridge(sys: string, dev: string): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const cls = (await readFile(join(sys, 'bus/pci/devices', dev, 'class'), 'utf8').catch(() => '')).trim();
  return cls.startsWith('0x0604');
}

async function driverOf(sys: string, dev: string): Promise<string | null> {
  const l = await readlink(join(sys, 'bus/pci/devices', dev, 'driver')).catch(() => null);
  return l ? basename(l) : null;
}

/** Check one device against sysfs (`sysRoot` default /sys) and /dev (`devRoot` default /dev). */
export async function checkPciDevice(d: VmSpec['devices'][number], o: { sysRoot?: string; devRoot?: string } = {}): Promise<DeviceCheck> {
  const sys = o.sysRoot ?? '/sys';
  const devRoot = o.devRoot ?? '/dev';
  const pci = fullPciAddress(d.pci);
  const problems: string[] = [];
  const base = join(sys, 'bus/pci/devices', pci);
  const out: DeviceCheck = { pci, ok: false, group: null, problems, members: [] };
  if (
    !(await access(base).then(
      () => true,
      () => false,
    ))
  ) {
    problems.push(`no PCI device ${pci} on this host (lspci -D lists them)`);
    return out;
  }
  const groupLink = await readlink(join(base, 'iommu_group')).catch(() => null);
  if (!groupLink) {
    problems.push(`${pci} has no IOMMU group: enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on) iommu=pt`);
    return out;
  }
  out.group = basename(groupLink);
  const members = await readdir(join(sys, 'kernel/iommu_groups', out.group, 'devices')).catch(() => [pci]);
  for (const m of members.sort()) {
    const driver = await driverOf(sys, m);
    out.members.push({ pci: m, driver });
    if (driver !== 'vfio-pci' && !(await isBridge(sys, m))) {
      problems.push(
        `${m} (IOMMU group ${out.group}${m === pci ? '' : `, same group as ${pci}`}) is bound to ${driver ?? 'no driver'}, not vfio-pci: ` +
          `echo ${m} > /sys/bus/pci/devices/${m}/driver/unbind; echo vfio-pci > /sys/bus/pci/devices/${m}/driver_override; echo ${m} > /sys/bus/pci/drivers_probe`,
      );
    }
  }
  const node = join(devRoot, 'vfio', out.group);
  if (
    !(await access(node, constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ))
  ) {
    problems.push(`${node} is missing or not accessible to this user (modprobe vfio-pci; give the user access to it)`);
  }
  if (
    d.romFile &&
    !(await access(d.romFile, constants.R_OK).then(
      () => true,
      () => false,
    ))
  ) {
    problems.push(`ROM file ${d.romFile} is not readable`);
  }
  out.ok = problems.length === 0;
  return out;
}

/** Checks of every device declared by the given VMs (deduplicated by address). */
export async function checkDevices(vms: readonly VmSpec[], o: { sysRoot?: string; devRoot?: string } = {}): Promise<DeviceCheck[]> {
  const seen = new Map<string, VmSpec['devices'][number]>();
  for (const vm of vms) for (const d of vm.devices) if (!seen.has(fullPciAddress(d.pci))) seen.set(fullPciAddress(d.pci), d);
  return Promise.all([...seen.values()].map((d) => checkPciDevice(d, o)));
}

/** `tend doctor` lines for the checks: one per device, then its problems. */
export function renderDeviceChecks(checks: readonly DeviceCheck[]): string[] {
  return checks.map((c) =>
    c.ok
      ? `PCI ${c.pci}: ready (IOMMU group ${c.group}: ${c.members.map((m) => `${m.pci}=${m.driver ?? 'none'}`).join(', ')})`
      : `PCI ${c.pci}: NOT ready for passthrough`,
  );
}
