/** A holos.yaml is read as holos reads it: verbatim, no interpolation (holos documents none). */
import { basename } from 'node:path';

export const isHolosFile = (file: string): boolean => /^holos\.ya?ml$/i.test(basename(file));
