/**
 * The time limit of each readiness stage (design §5): QEMU start (until QMP reports it running),
 * SSH (until the guest's sshd answers with a banner), login (banner seen until a login works),
 * cloud-init (login works until `cloud-init status --wait` succeeds). The healthcheck stage is
 * bounded by its own compose settings (start_period, interval × retries, timeout).
 *
 * Each limit is the first of: the command's flag (`--ssh-timeout 5m`, for every VM of the
 * command), the VM's `timeouts` in the file, the environment (`$TEND_SSH_TIMEOUT`, ...; for the
 * guest stages `$TEND_READY_TIMEOUT` too), the built-in default.
 */
import type { VmSpec } from '../schemas/model.js';
import { parseDuration } from '../schemas/units.js';

export type Stage = keyof VmSpec['timeouts'];

/** Built-in defaults in seconds: generous, since a TCG guest (no KVM) boots in about a minute. */
export const DEFAULT_TIMEOUTS: Readonly<Record<Stage, number>> = { start: 30, ssh: 600, login: 300, cloudInit: 1200 };

export const TIMEOUT_ENV: Readonly<Record<Stage, string>> = {
  start: 'TEND_START_TIMEOUT',
  ssh: 'TEND_SSH_TIMEOUT',
  login: 'TEND_LOGIN_TIMEOUT',
  cloudInit: 'TEND_CLOUD_INIT_TIMEOUT',
};

/** Flag values, in milliseconds. */
export type StageTimeouts = Partial<Record<Stage, number>>;

function envMs(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const s = parseDuration(v);
  return s !== null && s > 0 ? s * 1000 : undefined;
}

/** The limit of `stage` for `vm`, in milliseconds. */
export function stageTimeoutMs(
  stage: Stage,
  vm: Pick<VmSpec, 'timeouts'>,
  flags: StageTimeouts | undefined,
  env: NodeJS.ProcessEnv,
): number {
  const file = vm.timeouts?.[stage];
  return (
    flags?.[stage] ??
    (typeof file === 'number' ? file * 1000 : undefined) ??
    envMs(env[TIMEOUT_ENV[stage]]) ??
    (stage === 'start' ? undefined : envMs(env.TEND_READY_TIMEOUT)) ??
    DEFAULT_TIMEOUTS[stage] * 1000
  );
}
