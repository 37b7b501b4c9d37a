/**
 * kdljs builds its chevrotain lexer and parser when its module is imported, and chevrotain then
 * checks both grammars (ambiguities, unreachable alternatives, token patterns): ~20 ms of the
 * ~170 ms a `tend validate` of a VMFile.kdl took, on every start, for a grammar that never
 * changes between releases. kdljs passes chevrotain no options, so this module, imported before
 * kdljs (`kdl-parse.ts`, `kdl-speed.ts`), makes chevrotain's `skipValidations` option true for
 * every chevrotain lexer and parser built after it is loaded (in tend, only kdljs's two).
 * Nothing else changes: the checks only report a broken grammar, they do not shape the parser.
 * `test/unit/kdl-grammar.test.ts` runs the checks on kdljs's grammar in CI (`grammarChecks(true)`),
 * so a kdljs upgrade with a broken grammar fails there, not silently in production.
 */
import { EmbeddedActionsParser, Lexer } from 'chevrotain';

let checks = false;

/** Run chevrotain's grammar checks for lexers and parsers built from now on (tests). */
export function grammarChecks(on: boolean): void {
  checks = on;
}

/** Whether the checks are skipped for `instance` (built after this module was loaded). */
export function grammarChecksSkipped(instance: EmbeddedActionsParser | Lexer): boolean {
  return instance instanceof Lexer
    ? (instance as unknown as { config: { skipValidations: boolean } }).config.skipValidations
    : (instance as unknown as { skipValidations: boolean }).skipValidations;
}

/**
 * chevrotain's constructors assign the setting to the new object (`this.skipValidations = ...`,
 * `this.config = {...}`): an accessor on the prototype takes that assignment and stores the value
 * (with the checks skipped unless `grammarChecks(true)`) as the object's own property, so later
 * reads cost what they did before.
 */
function interceptAssignment(proto: object, key: string, skipped: (value: unknown) => unknown): void {
  Object.defineProperty(proto, key, {
    configurable: true,
    get: () => undefined,
    set(this: object, value: unknown) {
      Object.defineProperty(this, key, { value: checks ? value : skipped(value), writable: true, enumerable: true, configurable: true });
    },
  });
}

interceptAssignment(EmbeddedActionsParser.prototype, 'skipValidations', () => true);
interceptAssignment(Lexer.prototype, 'config', (config) => ({ ...(config as object), skipValidations: true }));
