// Types of the generated standalone validators (scripts/gen-validators.ts).
import type { ErrorObject } from 'ajv';

export interface GeneratedValidator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** schemas/tend.schema.json: the YAML file as editors see it */
export const validateTendFile: GeneratedValidator;
/** the canonical VmSpec (schemas/model.ts) */
export const validateVmSpec: GeneratedValidator;
