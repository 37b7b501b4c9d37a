/**
 * OpenSSH client configuration for tend's VMs (`tend ssh-config`): one `Host` block per VM, and
 * the marked section of an include file that `--append` keeps up to date. Pure: text in, text out.
 *
 * Each block names the VM by its host-key alias (`tend-<project>-<vm>`, src/ssh/known-hosts.ts),
 * so the pinned known_hosts file the block points at matches with `HostKeyAlias`, and ssh,
 * scp, rsync, Ansible and VS Code Remote-SSH all check the pinned key (`StrictHostKeyChecking yes`).
 */

export interface SshHostEntry {
  vm: string;
  /** the `Host` alias: tend-<project>-<vm> */
  host: string;
  hostName: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** the VM's pinned known_hosts file */
  knownHostsFile: string;
  hostKeyAlias: string;
  /** key types of the pin (HostKeyAlgorithms); empty when not pinned */
  hostKeyTypes: string[];
  /** the pin is valid for the VM's current disk */
  pinned: boolean;
}

/** A value as ssh_config reads it: double-quoted when it holds white space or a quote. */
export function configValue(v: string): string {
  return /[\s"]/.test(v) ? `"${v.replace(/"/g, '\\"')}"` : v;
}

/** One `Host` block (pure). */
export function renderHostBlock(e: SshHostEntry): string {
  const lines = [`Host ${e.host}`];
  if (!e.pinned) {
    lines.push(`  # host key not pinned yet (${e.vm} was not Ready on its current disk): ssh refuses it until \`tend up\` pins it`);
  }
  lines.push(`  HostName ${e.hostName}`, `  Port ${e.port}`, `  User ${configValue(e.user)}`);
  for (const k of e.identityFiles) lines.push(`  IdentityFile ${configValue(k)}`);
  lines.push(
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${configValue(e.knownHostsFile)}`,
    `  HostKeyAlias ${e.hostKeyAlias}`,
    '  StrictHostKeyChecking yes',
    '  CheckHostIP no',
  );
  if (e.hostKeyTypes.length > 0) lines.push(`  HostKeyAlgorithms ${e.hostKeyTypes.join(',')}`);
  return lines.join('\n') + '\n';
}

/** The blocks of a project, with a comment line per VM that has none (no SSH port yet). */
export function renderSshConfig(project: string, entries: SshHostEntry[], skipped: { vm: string; why: string }[]): string {
  const parts = [`# tend: project ${project}`];
  for (const s of skipped) parts.push(`# ${s.vm}: ${s.why}`);
  return [parts.join('\n') + '\n', ...entries.map(renderHostBlock)].join('\n');
}

const begin = (project: string): string => `# >>> tend ssh-config ${project} >>>`;
const end = (project: string): string => `# <<< tend ssh-config ${project} <<<`;

/**
 * `existing` (an include file, '' when new) with the section of `project` replaced by `body`,
 * or appended when it has none. Everything outside the section is kept as it is; a second call
 * with the same body returns the same text (pure).
 */
export function mergeSection(existing: string, project: string, body: string): string {
  const section = `${begin(project)}\n${body.endsWith('\n') ? body : body + '\n'}${end(project)}\n`;
  const lines = existing.split('\n');
  const from = lines.indexOf(begin(project));
  const to = from >= 0 ? lines.indexOf(end(project), from) : -1;
  if (from >= 0 && to > from) {
    const before = lines.slice(0, from).join('\n');
    const after = lines.slice(to + 1).join('\n');
    return (before ? before + '\n' : '') + section + after;
  }
  if (existing === '') return section;
  return existing + (existing.endsWith('\n') ? '' : '\n') + '\n' + section;
}
