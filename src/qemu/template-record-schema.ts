/** template.json's and clone.json's schemas (src/qemu/templates.ts, clone.ts), apart so the validator generator can import them. */
const strings = { type: 'array', items: { type: 'string' } } as const;

export const templateRecordSchema = {
  $id: 'tend:state/template',
  type: 'object',
  required: [
    'key',
    'createdAt',
    'from',
    'image',
    'qemuVersion',
    'argv',
    'stateBytes',
    'instanceId',
    'hostname',
    'user',
    'hostKeys',
    'bootId',
    'loginKey',
  ],
  properties: {
    key: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    createdAt: { type: 'number' },
    from: {
      type: 'object',
      required: ['project', 'vm'],
      properties: { project: { type: 'string' }, vm: { type: 'string' } },
    },
    image: {
      type: 'object',
      required: ['path', 'format', 'id', 'virtualSize'],
      properties: { path: { type: 'string' }, format: { type: 'string' }, id: { type: 'string' }, virtualSize: { type: 'number' } },
    },
    qemuVersion: { type: 'string' },
    argv: strings,
    stateBytes: { type: 'number' },
    instanceId: { type: 'string' },
    hostname: { type: 'string' },
    user: { type: 'string' },
    hostKeys: strings,
    bootId: { type: ['string', 'null'] },
    loginKey: { type: 'boolean' },
    libvirt: {
      type: 'object',
      required: ['uri', 'xml', 'portable'],
      properties: { uri: { type: 'string' }, xml: { type: 'string' }, portable: { type: 'string' } },
    },
  },
} as const;

export const cloneRecordSchema = {
  $id: 'tend:state/clone',
  type: 'object',
  required: ['key', 'template', 'disk'],
  properties: {
    key: { type: 'string' },
    template: { type: 'string' },
    disk: {
      type: 'object',
      required: ['ino', 'size', 'mtimeMs'],
      properties: { ino: { type: 'number' }, size: { type: 'number' }, mtimeMs: { type: 'number' } },
    },
  },
} as const;

/** template-pending: the image a fresh disk was made over (its first Ready may become a template). */
export const templatePendingSchema = {
  $id: 'tend:state/template-pending',
  type: 'object',
  required: ['path', 'format', 'id', 'virtualSize'],
  properties: { path: { type: 'string' }, format: { type: 'string' }, id: { type: 'string' }, virtualSize: { type: 'number' } },
} as const;
