/**
 * The checks that span VMs and files, run after every file is loaded: duplicate VM names,
 * depends_on targets and cycles, undeclared named volumes, and fixed host ports used twice.
 */
import type { Project, SourceLocation } from '../../schemas/model.js';
import type { Diagnostic } from '../../schemas/diagnostic.js';
import { didYouMean } from '../../schemas/names.js';
import { errorAt as at, locateField, type LoadedVm } from './common.js';

export function crossChecks(vms: LoadedVm[], volumes: Project['volumes']): Diagnostic[] {
  const out: Diagnostic[] = [];
  const byName = new Map<string, LoadedVm>();
  for (const vm of vms) {
    const prev = byName.get(vm.draft.name);
    if (prev) {
      out.push(
        at(
          vm.loc.file,
          vm.loc.line,
          vm.loc.column,
          `VM name "${vm.draft.name}" is already used at ${prev.loc.file}:${prev.loc.line}:${prev.loc.column}`,
          'every VM needs its own name: rename one of them',
        ),
      );
      continue;
    }
    byName.set(vm.draft.name, vm);
  }
  const names = [...byName.keys()];
  for (const vm of byName.values()) {
    (vm.draft.dependsOn ?? []).forEach((dep, i) => {
      if (dep === vm.draft.name) {
        const loc = locateField(vm, `/dependsOn/${i}`);
        out.push(at(loc.file, loc.line, loc.column, `"${vm.draft.name}" depends on itself`));
      } else if (!byName.has(dep)) {
        const loc = locateField(vm, `/dependsOn/${i}`);
        const guess = didYouMean(dep, names);
        out.push(
          at(
            loc.file,
            loc.line,
            loc.column,
            `depends_on names "${dep}", which is not a VM of this project`,
            guess ? `did you mean "${guess}"?` : `known VMs: ${names.join(', ')}`,
          ),
        );
      }
    });
    (vm.draft.volumes ?? []).forEach((v, i) => {
      if (v.kind === 'named' && v.name && !volumes[v.name]) {
        const loc = locateField(vm, `/volumes/${i}`);
        const guess = didYouMean(v.name, Object.keys(volumes));
        out.push(
          at(
            loc.file,
            loc.line,
            loc.column,
            `volume "${v.name}" is not declared in the top-level volumes`,
            guess
              ? `did you mean "${guess}"?`
              : `declare it: volumes: { ${v.name}: { size: 10 } } (tend.yaml) or volume "${v.name}" { size 10 } (VMFile.kdl)`,
          ),
        );
      }
    });
  }
  out.push(...cycleDiagnostics(byName));
  out.push(...duplicateHostPorts([...byName.values()]));
  return out;
}

/** Two VMs (or two forwards of one VM) declaring the same fixed host port: found by `validate`. */
function duplicateHostPorts(vms: LoadedVm[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  // by "port/proto": the forwards seen so far, in file order (one lookup per forward: validation stays linear)
  const seen = new Map<string, { vm: string; addr: string; loc: () => SourceLocation }[]>();
  const wildcard = (a: string): boolean => a === '0.0.0.0' || a === '::' || a === '';
  for (const vm of vms) {
    (vm.draft.ports ?? []).forEach((p, i) => {
      if (!p || typeof p.hostPort !== 'number') return;
      const addr = p.hostAddress ?? '127.0.0.1';
      const proto = p.protocol ?? 'tcp';
      const here = (): SourceLocation => locateField(vm, `/ports/${i}`);
      const key = `${p.hostPort}/${proto}`;
      const same = seen.get(key) ?? [];
      const other = same.find((o) => o.addr === addr || wildcard(o.addr) || wildcard(addr));
      if (addr === '0.0.0.0' || addr === '::') {
        const loc = here();
        out.push({
          file: loc.file,
          line: loc.line,
          column: loc.column,
          message: `${vm.draft.name}: host port ${p.hostPort}/${proto} is bound to ${addr}, so other machines can reach it`,
          hint: `write "${p.hostPort}:${p.guestPort ?? ''}" to keep it on 127.0.0.1 (the default)`,
          severity: 'warning',
        });
      }
      if (other) {
        const whose = other.vm === vm.draft.name ? 'this VM' : other.vm;
        const [loc, first] = [here(), other.loc()];
        out.push(
          at(
            loc.file,
            loc.line,
            loc.column,
            `${vm.draft.name}: host port ${p.hostPort}/${proto} is also used by ${whose} (${first.file}:${first.line}:${first.column})`,
            'give one of them another host port, or leave the host port out to let tend pick one',
          ),
        );
      } else {
        same.push({ vm: vm.draft.name, addr, loc: here });
        seen.set(key, same);
      }
    });
  }
  return out;
}

function cycleDiagnostics(byName: Map<string, LoadedVm>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'visiting');
    stack.push(name);
    const vm = byName.get(name);
    for (const dep of vm?.draft.dependsOn ?? []) {
      if (!byName.has(dep) || dep === name) continue;
      if (state.get(dep) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(dep)), dep];
        const key = [...cycle].sort().join(',');
        if (!reported.has(key) && vm) {
          reported.add(key);
          const i = (vm.draft.dependsOn ?? []).indexOf(dep);
          const loc = locateField(vm, `/dependsOn/${i}`);
          out.push(
            at(loc.file, loc.line, loc.column, `depends_on forms a cycle: ${cycle.join(' → ')}`, 'remove one of these dependencies'),
          );
        }
      } else if (!state.has(dep)) {
        visit(dep);
      }
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of byName.keys()) if (!state.has(name)) visit(name);
  return out;
}
