/**
 * Types for the part of js-yaml tend uses (yaml-fast.ts). Written here rather than taken from
 * @types/js-yaml, whose 4.0 declarations lack `types`, `maxDepth` and the listener's state.
 */
declare module 'js-yaml' {
  interface TypeOptions {
    kind: 'scalar' | 'sequence' | 'mapping';
    resolve?: (data: string) => boolean;
    construct?: (data: string) => unknown;
  }
  class Type {
    constructor(tag: string, options: TypeOptions);
  }
  class Schema {
    extend(types: { implicit?: Type[]; explicit?: Type[] }): Schema;
  }
  interface LoadOptions {
    schema?: Schema;
    maxDepth?: number;
    listener?: (
      event: 'open' | 'close',
      state: { anchor: string | null; kind: 'scalar' | 'sequence' | 'mapping' | null; position: number },
    ) => void;
  }
  const jsyaml: {
    FAILSAFE_SCHEMA: Schema;
    Type: typeof Type;
    types: { merge: Type };
    load(text: string, options?: LoadOptions): unknown;
  };
  export default jsyaml;
}
