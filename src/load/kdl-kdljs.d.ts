/**
 * Types for kdljs's own lexer (the module has no declarations). tend uses it to find the
 * line:column of every node and value, because kdljs's parse output carries no positions.
 */
declare module 'kdljs/src/parser/kdl.js' {
  export interface KdlToken {
    image: string;
    startOffset: number;
    endOffset?: number;
    startLine?: number;
    startColumn?: number;
    endLine?: number;
    endColumn?: number;
    tokenType: { name: string };
  }
  export interface KdlLexError {
    offset: number;
    length: number;
    line?: number;
    column?: number;
    message: string;
  }
  export const lexer: { tokenize(text: string): { tokens: KdlToken[]; errors: KdlLexError[] } };
  /** kdljs's one parser instance (chevrotain): `input` takes lexed tokens, `document()` parses them. */
  export function parse(text: string): import('kdljs').ParseResult;
  export const parser: { input: KdlToken[]; document(): import('kdljs').Node[] | undefined; errors: unknown[] };
  /** kdljs's parser class: each instance builds (and checks) the grammar again. */
  export const KdlParser: new () => typeof parser;
}
