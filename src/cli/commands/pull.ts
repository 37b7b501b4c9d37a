/** `tend pull IMAGE` (holos): `tend image pull IMAGE`. */
import { EXIT } from '../../../schemas/errors.js';
import type { CliCommand } from '../command.js';

export const command: CliCommand = {
  name: 'pull',
  description: 'download and verify a base image into the store (same as `tend image pull`)',
  examples: ['tend pull debian:12', 'tend pull oci://ghcr.io/org/disk:latest'],
  configure: (c) => c.argument('<image>', 'a catalog name, an http(s) URL or an oci:// reference'),
  async run({ g, args, io }) {
    const { imageCommand, pullProgress, renderImage } = await import('./image.js');
    const progress = await pullProgress(io, g);
    const r = await imageCommand({ ...g, verb: 'pull', ref: args[0] as string, ...progress }).finally(() => progress.close());
    if (g.json) io.json(r);
    else io.out(renderImage(r));
    return EXIT.ok;
  },
};
