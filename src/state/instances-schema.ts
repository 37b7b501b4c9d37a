/** The schema of `instances.json` (instances.ts), apart so the validator generator can import it. */
export const instancesRecordSchema = {
  $id: 'tend:state/instances',
  type: 'object',
  additionalProperties: { type: 'array', items: { type: 'string' } },
} as const;
