// Types of the generated standalone validators of the state files (scripts/gen-validators.ts,
// src/state/state-schemas.ts).
import type { StateValidator } from './atomic.js';

export const validateAppliedRecord: StateValidator;
export const validatePortRecord: StateValidator;
export const validateIntentRecord: StateValidator;
export const validateProvisionRecord: StateValidator;
export const validateStatusRecord: StateValidator;
export const validateHelperRecord: StateValidator;
export const validateSavedRecord: StateValidator;
export const validateLibvirtSavedRecord: StateValidator;
export const validateTemplateRecord: StateValidator;
export const validateCloneRecord: StateValidator;
export const validateTemplatePending: StateValidator;
export const validateBackendRecord: StateValidator;
export const validateInstancesRecord: StateValidator;
export const validateProjectNetRecord: StateValidator;
export const validateProjectRecord: StateValidator;
export const validateLockHolder: StateValidator;
export const validateEvent: StateValidator;
export const validateImageIndex: StateValidator;
export const validateAccelVerdict: StateValidator;
