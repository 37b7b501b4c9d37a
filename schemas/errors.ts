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

export class TendError extends Error {
  readonly reason: string;
  readonly exitCode: number;
  constructor(reason: string, message: string, exitCode: number = EXIT.failure, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.reason = reason;
    this.exitCode = exitCode;
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
  constructor(message: string, reason = 'BadUsage') {
    super(reason, message, EXIT.usage);
  }
}

/** The per-project lock is held by someone else. */
export class LockError extends TendError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ProjectLocked', message, EXIT.locked, options);
  }
}

export class NotFoundError extends TendError {
  constructor(reason: string, message: string) {
    super(reason, message, EXIT.notFound);
  }
}

/** QEMU, qemu-img, downloads, SSH: something outside tend failed. */
export class BackendError extends TendError {
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(reason, message, EXIT.backend, options);
  }
}
