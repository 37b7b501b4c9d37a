/** For `assert.rejects`: the error is a TendError with this reason (and a message matching `pattern`). */
import assert from 'node:assert/strict';
import { TendError } from '../../schemas/errors.js';

export function rejectsWith(reason: string, pattern?: RegExp): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TendError, `expected a TendError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}
