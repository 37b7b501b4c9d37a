/** saved.json's schema (src/qemu/saved-state.ts), apart so the validator generator can import it. */
export const fileIdSchema = {
  type: 'object',
  required: ['ino', 'size', 'mtimeMs'],
  properties: { ino: { type: 'number' }, size: { type: 'number' }, mtimeMs: { type: 'number' } },
} as const;

export const savedRecordSchema = {
  $id: 'tend:state/saved',
  type: 'object',
  required: ['savedAt', 'bytes', 'qemuVersion', 'argv', 'disks', 'seed'],
  properties: {
    savedAt: { type: 'number' },
    bytes: { type: 'number' },
    qemuVersion: { type: 'string' },
    argv: { type: 'array', items: { type: 'string' } },
    disks: { type: 'object', additionalProperties: fileIdSchema },
    seed: { type: ['string', 'null'] },
  },
} as const;
