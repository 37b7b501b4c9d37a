/** libvirt-saved.json's schema (src/libvirt/managed-save.ts), apart so the validator generator can import it. */
import { fileIdSchema } from '../qemu/saved-record-schema.js';

export const libvirtSavedRecordSchema = {
  $id: 'tend:state/libvirt-saved',
  type: 'object',
  required: ['savedAt', 'domain', 'xml', 'disks', 'seed', 'stateFile'],
  properties: {
    savedAt: { type: 'number' },
    domain: { type: 'string' },
    xml: { type: 'string' },
    disks: { type: 'object', additionalProperties: fileIdSchema },
    seed: { type: ['string', 'null'] },
    stateFile: { anyOf: [{ type: 'null' }, fileIdSchema] },
  },
} as const;
