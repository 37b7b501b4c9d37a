/**
 * The few error classes of tend. Each has a stable `reason` (UpperCamelCase) and an exit code.
 * Library code throws these (wrapping causes with `{ cause }`); only the CLI entry prints them
 * and turns them into exit codes.
 */
import type { Diagnostic } from './diagnostic.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidInput: 3,
  locked: 4,
  notFound: 5,
  backend: 6,
} as const;

/** Options of every error: the cause it wraps, and the next step for the user when the message does not say it. */
export interface ErrorOptions {
  cause?: unknown;
  /** what to do next, as a command or a change to make (`--json` gives it as `error.next`) */
  next?: string;
}

export class TendError extends Error {
  readonly reason: string;
  readonly exitCode: number;
  readonly next: string | undefined;
  constructor(reason: string, message: string, exitCode: number = EXIT.failure, options?: ErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = reason;
    this.exitCode = exitCode;
    this.next = options?.next;
  }
}

/** One or more project files are invalid; carries every diagnostic of every file. */
export class ValidationError extends TendError {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super('InvalidProject', `${diagnostics.length} error${diagnostics.length === 1 ? '' : 's'} in the project files`, EXIT.invalidInput);
    this.diagnostics = diagnostics;
  }
}

/** Bad command-line usage (unknown VM name, conflicting flags, ...). */
export class UsageError extends TendError {
  constructor(message: string, reason = 'BadUsage', options?: ErrorOptions) {
    super(reason, message, EXIT.usage, options);
  }
}

/** The per-project lock is held by someone else. */
export class LockError extends TendError {
  constructor(message: string, options?: ErrorOptions) {
    super('ProjectLocked', message, EXIT.locked, options);
  }
}

export class NotFoundError extends TendError {
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(reason, message, EXIT.notFound, options);
  }
}

/** QEMU, qemu-img, downloads, SSH: something outside tend failed. */
export class BackendError extends TendError {
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(reason, message, EXIT.backend, options);
  }
}
