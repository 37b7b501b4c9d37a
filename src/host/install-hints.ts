/**
 * How to install the host tools tend runs, in one place: `tend doctor` lists them as problems,
 * and a command that finds one missing (QEMU at `tend up`) names the same install command.
 */
export const INSTALL_HINTS = {
  'qemu-system-x86_64': 'apt-get install qemu-system-x86',
  'qemu-img': 'apt-get install qemu-utils',
  ssh: 'apt-get install openssh-client',
} as const;

export type HostTool = keyof typeof INSTALL_HINTS;

/** "install it: sudo apt-get install qemu-system-x86 (Debian/Ubuntu); `tend doctor` checks the host" */
export function installNext(tool: string): string {
  const cmd = (INSTALL_HINTS as Record<string, string>)[tool.replace(/^.*\//, '')];
  return `${cmd ? `install it: sudo ${cmd} (Debian/Ubuntu), or put it on PATH` : `install ${tool} or put it on PATH`}; \`tend doctor\` checks the host`;
}
