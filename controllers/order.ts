/**
 * depends_on as an execution order (design §3): a dependent that is about to be started waits
 * until every dependency settled *usable* (Ready, i.e. healthy); independent VMs run in parallel;
 * a dependency that failed (or is stopped, or itself blocked) blocks its dependents, which are
 * not run and are reported ("waiting on db, which failed: ..."). Cycles were rejected at load
 * time; a cycle that gets here anyway blocks the VMs on it instead of deadlocking.
 */

export interface OrderItem {
  name: string;
  dependsOn: readonly string[];
  /** false: runs without waiting (it starts nothing: stop, prune, a VM already running, ...) */
  gated: boolean;
}

/** How a run ended, as far as its dependents care. */
export interface RunOutcome {
  /** dependents may start (the VM is Ready) */
  usable: boolean;
  /** for dependents' messages when not usable: "failed: boom", "stopped", ... */
  summary: string;
}

export type OrderResult =
  | { name: string; ran: true; outcome: RunOutcome }
  /** not run: blocked by a dependency, or (`cancelled`) the run was cancelled before it started */
  | { name: string; ran: false; blockedBy: string; message: string; cancelled?: true };

/** Names on a dependency cycle (among the items), in a stable order. */
export function findCycles(items: readonly OrderItem[]): Map<string, string[]> {
  const deps = new Map(items.map((i) => [i.name, i.dependsOn]));
  const onCycle = new Map<string, string[]>();
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    const s = state.get(n);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(n)), n];
      for (const c of cycle) if (!onCycle.has(c)) onCycle.set(c, cycle);
      return;
    }
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of deps.get(n) ?? []) if (deps.has(d)) visit(d);
    stack.pop();
    state.set(n, 'done');
  };
  for (const i of items) visit(i.name);
  return onCycle;
}

const cancelled = (name: string): OrderResult => ({
  name,
  ran: false,
  blockedBy: name,
  message: 'cancelled before it started',
  cancelled: true,
});

/**
 * Run every item, each as soon as its gate allows. `run` is called at most once per item.
 * Resolves when every item ran or was blocked; if a run rejects (an aborted converge), waits for
 * all the others to settle too, then rejects with the first error: no promise is left dangling.
 * Once `cancel` aborts, items not started yet are not started (`cancelled`); started ones finish.
 */
export async function runInOrder(
  items: readonly OrderItem[],
  run: (name: string) => Promise<RunOutcome>,
  cancel?: AbortSignal,
  /** a gated item starts waiting for `dep`, which has not settled yet (for "waiting for db" progress) */
  onWait?: (name: string, dep: string) => void,
): Promise<Map<string, OrderResult>> {
  const byName = new Map(items.map((i) => [i.name, i]));
  const cycles = findCycles(items);
  const promises = new Map<string, Promise<OrderResult>>();
  const done = new Set<string>();

  const describe = (r: OrderResult): string =>
    r.ran ? r.outcome.summary : 'cancelled' in r ? 'was cancelled' : `is blocked (${r.message})`;

  const schedule = (item: OrderItem): Promise<OrderResult> => {
    const existing = promises.get(item.name);
    if (existing) return existing;
    const p = (async (): Promise<OrderResult> => {
      if (item.gated) {
        const cycle = cycles.get(item.name);
        if (cycle)
          return { name: item.name, ran: false, blockedBy: cycle[1] ?? item.name, message: `dependency cycle: ${cycle.join(' → ')}` };
        for (const dep of item.dependsOn) {
          const depItem = byName.get(dep);
          if (!depItem) return { name: item.name, ran: false, blockedBy: dep, message: `waiting on ${dep}, which is not declared` };
          const pending = schedule(depItem);
          if (!done.has(dep)) onWait?.(item.name, dep);
          const r = await pending;
          if (cancel?.aborted) return cancelled(item.name);
          if (!(r.ran && r.outcome.usable))
            return { name: item.name, ran: false, blockedBy: dep, message: `waiting on ${dep}, which ${describe(r)}` };
        }
      }
      if (cancel?.aborted) return cancelled(item.name);
      return { name: item.name, ran: true, outcome: await run(item.name) };
    })();
    promises.set(item.name, p);
    void p.then(
      () => done.add(item.name),
      () => done.add(item.name),
    );
    return p;
  };

  // A non-gated item never awaits others, so cycles cannot deadlock: gated items on a cycle are
  // blocked above before they await anything.
  const all = items.map((i) => schedule(i));
  const settled = await Promise.allSettled(all);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return new Map(settled.map((s, idx) => [items[idx]!.name, (s as PromiseFulfilledResult<OrderResult>).value]));
}

/** The same items with every edge reversed: for stopping, dependents go down before what they use. */
export function reversed(items: readonly OrderItem[]): OrderItem[] {
  return items.map((i) => ({
    name: i.name,
    gated: i.gated,
    dependsOn: items.filter((o) => o.dependsOn.includes(i.name)).map((o) => o.name),
  }));
}

/** `names` plus everything they depend on, transitively (compose: `up web` also brings up db). */
export function withDependencies(names: readonly string[], dependsOn: (name: string) => readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (n: string): void => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of dependsOn(n)) add(d);
    out.push(n);
  };
  for (const n of names) add(n);
  return out;
}
