/**
 * The seam for ov's `vms.yml` dialect (a later issue). Until it lands, a vms.yml is reported,
 * with its position, rather than silently ignored.
 */
import type { DialectLoader } from './common.js';

export const loadVmsYml: DialectLoader = (file) => ({
  vms: [],
  volumes: {},
  volumeLocs: {},
  diagnostics: [
    {
      file,
      line: 1,
      column: 1,
      severity: 'error',
      message: 'vms.yml (ov) files are not supported yet',
      hint: 'describe these VMs in tend.yaml or VMFile.kdl for now',
    },
  ],
});
