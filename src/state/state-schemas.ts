/**
 * Every JSON state file tend writes, by the name of its compiled validator. The schemas live with
 * the module that owns each file; scripts/gen-validators.ts compiles this list into
 * src/state/validators.generated.js (ajv standalone: no schema compiling at start-up), and
 * readJson (atomic.ts) parses every state file through one of them.
 */
import { vmSpecSchema } from '../../schemas/model.js';
import { accelVerdictSchema } from '../qemu/accel.js';
import { helperRecordSchema } from '../qemu/helpers.js';
import { appliedRecordSchema, intentRecordSchema } from '../qemu/observe.js';
import { portRecordSchema } from '../qemu/ports.js';
import { savedRecordSchema } from '../qemu/saved-record-schema.js';
import { libvirtSavedRecordSchema } from '../libvirt/saved-record-schema.js';
import { cloneRecordSchema, templatePendingSchema, templateRecordSchema } from '../qemu/template-record-schema.js';
import { projectNetRecordSchema } from '../qemu/project-net.js';
import { imageIndexSchema } from '../images/store.js';
import { provisionRecordSchema } from '../provision/record.js';
import { statusRecordSchema } from './status.js';
import { projectRecordSchema } from './project-record-schema.js';
import { eventSchema } from './events.js';
import { lockHolderSchema } from './lock.js';
import { backendRecordSchema } from '../backend/record-schema.js';
import { instancesRecordSchema } from './instances-schema.js';

/** validator name → [file it checks, schema] */
export const STATE_SCHEMAS = {
  validateAppliedRecord: ['vms/<vm>/applied.json', appliedRecordSchema],
  validatePortRecord: ['vms/<vm>/ports.json', portRecordSchema],
  validateIntentRecord: ['vms/<vm>/intent.json', intentRecordSchema],
  validateProvisionRecord: ['vms/<vm>/provision.json', provisionRecordSchema],
  validateStatusRecord: ['vms/<vm>/status.json', statusRecordSchema],
  validateHelperRecord: ['vms/<vm>/helpers.json', helperRecordSchema],
  validateSavedRecord: ['vms/<vm>/saved.json', savedRecordSchema],
  validateLibvirtSavedRecord: ['vms/<vm>/libvirt-saved.json', libvirtSavedRecordSchema],
  validateTemplateRecord: ['images/templates/<key>/template.json', templateRecordSchema],
  validateCloneRecord: ['vms/<vm>/clone.json', cloneRecordSchema],
  validateTemplatePending: ['vms/<vm>/template-pending', templatePendingSchema],
  validateBackendRecord: ['vms/<vm>/backend.json', backendRecordSchema],
  validateInstancesRecord: ['instances.json', instancesRecordSchema],
  validateProjectNetRecord: ['network.json', projectNetRecordSchema],
  validateProjectRecord: ['project.json', projectRecordSchema],
  validateLockHolder: ['project.lock.holder.json, watch.lock.holder.json', lockHolderSchema],
  validateEvent: ['events.jsonl (one line)', eventSchema],
  validateImageIndex: ['images/catalog.json', imageIndexSchema],
  validateAccelVerdict: ['~/.cache/tend/accel.json', accelVerdictSchema],
} as const;

/** Schemas the state schemas refer to ($ref), not validators of their own. */
export const REFERENCED_SCHEMAS = [vmSpecSchema] as const;
