/**
 * A small XML reader, enough for libvirt domain XML: elements, attributes, text, comments,
 * CDATA, the XML declaration and the five predefined entities (plus numeric ones). No DTDs,
 * no namespaces beyond keeping prefixed names as written. Throws XmlError with a line number.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** concatenated text directly inside this element, trimmed */
  text: string;
  line: number;
}

export class XmlError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'XmlError';
    this.line = line;
  }
}

function decode(s: string, line: number): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const code = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
    if (!Number.isFinite(code)) throw new XmlError(`bad character reference &${e};`, line);
    return String.fromCodePoint(code);
  });
}

export function parseXml(text: string): XmlElement {
  let i = 0;
  let line = 1;
  const advance = (to: number): void => {
    for (let k = i; k < to; k++) if (text.charCodeAt(k) === 10) line++;
    i = to;
  };
  const stack: XmlElement[] = [];
  const texts: string[][] = [];
  let root: XmlElement | null = null;

  while (i < text.length) {
    const lt = text.indexOf('<', i);
    if (lt < 0) {
      if (text.slice(i).trim() && stack.length === 0) throw new XmlError('text after the root element', line);
      advance(text.length);
      break;
    }
    if (lt > i) {
      const chunk = text.slice(i, lt);
      if (stack.length > 0) texts[texts.length - 1].push(decode(chunk, line));
      else if (chunk.trim()) throw new XmlError('text outside the root element', line);
      advance(lt);
    }
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) throw new XmlError('unclosed comment', line);
      advance(end + 3);
      continue;
    }
    if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end < 0) throw new XmlError('unclosed CDATA section', line);
      if (stack.length > 0) texts[texts.length - 1].push(text.slice(i + 9, end));
      advance(end + 3);
      continue;
    }
    if (text.startsWith('<?', i) || text.startsWith('<!', i)) {
      const end = text.indexOf('>', i);
      if (end < 0) throw new XmlError('unclosed declaration', line);
      advance(end + 1);
      continue;
    }
    if (text.startsWith('</', i)) {
      const end = text.indexOf('>', i);
      if (end < 0) throw new XmlError('unclosed end tag', line);
      const name = text.slice(i + 2, end).trim();
      const open = stack.pop();
      if (!open || open.name !== name)
        throw new XmlError(`</${name}> does not close ${open ? `<${open.name}> (line ${open.line})` : 'any element'}`, line);
      open.text = (texts.pop() ?? []).join('').trim();
      advance(end + 1);
      if (stack.length === 0) root = open;
      continue;
    }
    // start tag
    const m = /^<([A-Za-z_][\w.:-]*)/.exec(text.slice(i, i + 256));
    if (!m) throw new XmlError('a "<" that starts no tag', line);
    const el: XmlElement = { name: m[1], attrs: {}, children: [], text: '', line };
    let j = i + m[0].length;
    const attrRe = /\s*([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')|\s*(\/?>)/y;
    let selfClosing = false;
    for (;;) {
      attrRe.lastIndex = j;
      const a = attrRe.exec(text);
      if (!a) throw new XmlError(`malformed tag <${el.name}>`, line);
      j = attrRe.lastIndex;
      if (a[5]) {
        selfClosing = a[5] === '/>';
        break;
      }
      el.attrs[a[1]] = decode(a[3] ?? a[4] ?? '', line);
    }
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else if (root) throw new XmlError('a second root element', line);
    advance(j);
    if (selfClosing) {
      if (stack.length === 0) root = el;
    } else {
      stack.push(el);
      texts.push([]);
    }
  }
  if (stack.length > 0)
    throw new XmlError(`<${stack[stack.length - 1].name}> (line ${stack[stack.length - 1].line}) is never closed`, line);
  if (!root) throw new XmlError('no root element', line);
  return root;
}

/** First child element named `name` (a path "a/b" descends). */
export function child(el: XmlElement | undefined, path: string): XmlElement | undefined {
  let cur = el;
  for (const part of path.split('/')) cur = cur?.children.find((c) => c.name === part);
  return cur;
}
