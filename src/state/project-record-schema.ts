/** The schema of `project.json` (project-record.ts), apart so the validator generator can import it. */
export const projectRecordSchema = {
  $id: 'tend:state/project',
  type: 'object',
  required: ['name', 'dir', 'files', 'createdAt'],
  properties: {
    name: { type: 'string' },
    dir: { type: 'string' },
    files: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' },
  },
} as const;
