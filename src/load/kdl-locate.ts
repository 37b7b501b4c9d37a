/**
 * Positions for a KDL document. kdljs parses KDL 2 but its node trees carry no source
 * positions, so this walks kdljs's own token stream the same way its grammar does and records
 * the line:column (1-based) of every node name, argument, property and children block, in
 * document order. Slash-dashed (`/-`) nodes, arguments and blocks are skipped exactly as kdljs
 * skips them, so the result zips one-to-one with kdljs's output. Only called on text that lexes.
 */
import type { KdlToken } from 'kdljs/src/parser/kdl.js';

export interface Pos {
  line: number;
  column: number;
}

export interface LocProp {
  key: string;
  keyPos: Pos;
  valuePos: Pos;
}

export interface LocNode {
  name: Pos;
  values: Pos[];
  props: LocProp[];
  /** position of the `{` of the children block; null when the node has none */
  children: LocNode[] | null;
  childrenPos: Pos | null;
}

const NODE_SPACE = new Set(['WhiteSpace', 'OpenMultiLineComment', 'EscLine']);
const NODE_END = new Set(['NewLine', 'SemiColon', 'LineComment']);
const SCALARS = new Set(['Boolean', 'Null', 'FloatKeyword', 'Float', 'Integer', 'Identifier', 'RawString', 'MultiLineRawString']);

export function posOf(t: KdlToken | undefined): Pos {
  return { line: t?.startLine ?? 1, column: t?.startColumn ?? 1 };
}

class Walker {
  private i = 0;
  constructor(private readonly toks: KdlToken[]) {}

  private type(k = 0): string {
    return this.toks[this.i + k]?.tokenType.name ?? 'EOF';
  }

  private skipMultilineComment(): void {
    let depth = 0;
    do {
      const t = this.type();
      if (t === 'OpenMultiLineComment') depth++;
      else if (t === 'CloseMultiLineComment') depth--;
      else if (t === 'EOF') return;
      this.i++;
    } while (depth > 0);
  }

  private skipNodeSpace(): void {
    for (;;) {
      const t = this.type();
      if (t === 'WhiteSpace') this.i++;
      else if (t === 'OpenMultiLineComment') this.skipMultilineComment();
      else if (t === 'EscLine') {
        this.i++;
        while (this.type() === 'WhiteSpace') this.i++;
        if (this.type() === 'LineComment') this.i++;
        if (this.type() === 'NewLine') this.i++;
      } else return;
    }
  }

  private skipLineSpace(): void {
    for (;;) {
      const t = this.type();
      if (NODE_SPACE.has(t)) this.skipNodeSpace();
      else if (t === 'NewLine' || t === 'LineComment' || t === 'BOM' || t === 'SemiColon') this.i++;
      else return;
    }
  }

  /** Skips one string token group; returns its text for identifiers and plain quoted strings. */
  private skipString(): string {
    const t = this.type();
    if (t === 'OpenQuote' || t === 'MultiLineOpenQuote') {
      const close = t === 'OpenQuote' ? 'CloseQuote' : 'MultiLineCloseQuote';
      let s = '';
      this.i++;
      while (this.type() !== close && this.type() !== 'EOF') s += this.toks[this.i++].image;
      this.i++;
      return s;
    }
    const img = this.toks[this.i]?.image ?? '';
    this.i++;
    return img;
  }

  private skipValue(): void {
    const t = this.type();
    if (SCALARS.has(t)) this.i++;
    else this.skipString();
  }

  private skipTag(): void {
    while (this.type() !== 'RightParenthesis' && this.type() !== 'EOF') this.i++;
    this.i++;
    this.skipNodeSpace();
  }

  nodes(): LocNode[] {
    const out: LocNode[] = [];
    for (;;) {
      this.skipLineSpace();
      const t = this.type();
      if (t === 'EOF' || t === 'RightBrace') return out;
      if (t === 'BlockComment') {
        this.i++;
        this.skipLineSpace();
        this.node();
        continue;
      }
      out.push(this.node());
    }
  }

  private children(): LocNode[] {
    this.i++; // {
    const kids = this.nodes();
    if (this.type() === 'RightBrace') this.i++;
    return kids;
  }

  private entry(): { key?: string; keyPos?: Pos; valuePos: Pos } {
    if (this.type() === 'LeftParenthesis') this.skipTag();
    const first = posOf(this.toks[this.i]);
    const isStringish = !['Boolean', 'Null', 'FloatKeyword', 'Float', 'Integer'].includes(this.type());
    const text = isStringish ? this.skipString() : (this.skipValue(), '');
    const save = this.i;
    this.skipNodeSpace();
    if (isStringish && this.type() === 'Equals') {
      this.i++;
      this.skipNodeSpace();
      if (this.type() === 'LeftParenthesis') this.skipTag();
      const valuePos = posOf(this.toks[this.i]);
      this.skipValue();
      return { key: text, keyPos: first, valuePos };
    }
    this.i = save;
    return { valuePos: first };
  }

  private node(): LocNode {
    if (this.type() === 'LeftParenthesis') this.skipTag();
    const node: LocNode = { name: posOf(this.toks[this.i]), values: [], props: [], children: null, childrenPos: null };
    this.skipString();
    for (;;) {
      this.skipNodeSpace();
      const t = this.type();
      if (t === 'EOF' || t === 'RightBrace') return node;
      if (NODE_END.has(t)) {
        this.i++;
        if (t === 'LineComment' && this.type() === 'NewLine') this.i++;
        return node;
      }
      if (t === 'BlockComment') {
        this.i++;
        this.skipLineSpace();
        if (this.type() === 'LeftBrace') this.children();
        else this.entry();
        continue;
      }
      if (t === 'LeftBrace') {
        node.childrenPos = posOf(this.toks[this.i]);
        node.children = this.children();
        continue;
      }
      const e = this.entry();
      if (e.key !== undefined && e.keyPos) node.props.push({ key: e.key, keyPos: e.keyPos, valuePos: e.valuePos });
      else node.values.push(e.valuePos);
    }
  }
}

/** Positions of every node of a (lexically valid) KDL document, in document order. */
export function locateNodes(tokens: KdlToken[]): LocNode[] {
  return new Walker(tokens).nodes();
}
