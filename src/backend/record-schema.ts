/** The schema of `backend.json` (record.ts), apart so the validator generator can import it. */
export const backendRecordSchema = {
  $id: 'tend:state/backend',
  type: 'object',
  required: ['backend'],
  properties: {
    backend: { enum: ['qemu', 'libvirt'] },
    uri: { type: 'string' },
    domain: { type: 'string' },
  },
} as const;
