/**
 * A small GraphQL parser: enough of the language for the queries gh sends (operations, variables,
 * arguments, aliases, nested selections, fragments, directives skipped). Parsing the real query,
 * rather than matching its text, lets the emulator answer exactly the fields asked for and reject
 * the ones it does not know like GitHub does.
 */

export type Value =
  | { kind: 'var'; name: string }
  | { kind: 'const'; value: string | number | boolean | null }
  | { kind: 'enum'; value: string }
  | { kind: 'list'; items: Value[] }
  | { kind: 'object'; fields: Record<string, Value> };

export interface Loc {
  line: number;
  column: number;
}

export interface Field {
  kind: 'field';
  alias?: string;
  name: string;
  args: Record<string, Value>;
  selections?: Selection[];
  loc: Loc;
}
export interface InlineFragment {
  kind: 'inline';
  typeCondition?: string;
  selections: Selection[];
}
export interface FragmentSpread {
  kind: 'spread';
  name: string;
  loc: Loc;
}
export type Selection = Field | InlineFragment | FragmentSpread;

export interface TypeRef {
  name?: string;
  list?: TypeRef;
  nonNull: boolean;
}
export interface VariableDef {
  name: string;
  type: TypeRef;
  defaultValue?: Value;
  loc: Loc;
}
export interface Operation {
  kind: 'query' | 'mutation';
  name?: string;
  variables: VariableDef[];
  selections: Selection[];
  loc: Loc;
}
export interface Fragment {
  typeCondition: string;
  selections: Selection[];
}
export interface Document {
  operations: Operation[];
  fragments: Map<string, Fragment>;
}

export class GraphQLSyntaxError extends Error {
  constructor(
    message: string,
    readonly loc: Loc,
  ) {
    super(message);
  }
}

interface Token {
  kind: 'punct' | 'name' | 'number' | 'string' | 'eof';
  text: string;
  value?: string | number;
  loc: Loc;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const loc = (): Loc => ({ line, column: i - lineStart + 1 });
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === ',' || c === '\ufeff') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const start = loc();
    if (src.startsWith('...', i)) {
      out.push({ kind: 'punct', text: '...', loc: start });
      i += 3;
      continue;
    }
    if ('!$()[]{}:=@|&'.includes(c)) {
      out.push({ kind: 'punct', text: c, loc: start });
      i++;
      continue;
    }
    const name = /^[_A-Za-z][_0-9A-Za-z]*/.exec(src.slice(i));
    if (name) {
      out.push({ kind: 'name', text: name[0], loc: start });
      i += name[0].length;
      continue;
    }
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: 'number', text: num[0], value: Number(num[0]), loc: start });
      i += num[0].length;
      continue;
    }
    if (c === '"') {
      if (src.startsWith('"""', i)) {
        const end = src.indexOf('"""', i + 3);
        if (end < 0) throw new GraphQLSyntaxError('Unterminated block string', start);
        const text = src.slice(i + 3, end);
        out.push({ kind: 'string', text: src.slice(i, end + 3), value: text, loc: start });
        for (const ch of text) if (ch === '\n') line++;
        i = end + 3;
        continue;
      }
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) throw new GraphQLSyntaxError('Unterminated string', start);
      const raw = src.slice(i, j + 1);
      out.push({ kind: 'string', text: raw, value: JSON.parse(raw) as string, loc: start });
      i = j + 1;
      continue;
    }
    throw new GraphQLSyntaxError(`Parse error on "${c}" at [${start.line}, ${start.column}]`, start);
  }
  out.push({ kind: 'eof', text: '', loc: loc() });
  return out;
}

class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.pos]!;
  }
  private next(): Token {
    return this.toks[this.pos++]!;
  }
  private fail(t: Token): never {
    const what = t.kind === 'eof' ? 'end of file' : `"${t.text}"`;
    throw new GraphQLSyntaxError(`Parse error on ${what} at [${t.loc.line}, ${t.loc.column}]`, t.loc);
  }
  private is(text: string): boolean {
    const t = this.peek();
    return (t.kind === 'punct' || t.kind === 'name') && t.text === text;
  }
  private expect(text: string): Token {
    const t = this.next();
    if (t.text !== text || (t.kind !== 'punct' && t.kind !== 'name')) this.fail(t);
    return t;
  }
  private name(): string {
    const t = this.next();
    if (t.kind !== 'name') this.fail(t);
    return t.text;
  }

  document(): Document {
    const doc: Document = { operations: [], fragments: new Map() };
    while (this.peek().kind !== 'eof') {
      const t = this.peek();
      if (t.kind === 'punct' && t.text === '{') {
        doc.operations.push({ kind: 'query', variables: [], selections: this.selectionSet(), loc: t.loc });
      } else if (t.kind === 'name' && (t.text === 'query' || t.text === 'mutation')) {
        doc.operations.push(this.operation());
      } else if (t.kind === 'name' && t.text === 'fragment') {
        this.next();
        const name = this.name();
        this.expect('on');
        const typeCondition = this.name();
        this.directives();
        doc.fragments.set(name, { typeCondition, selections: this.selectionSet() });
      } else {
        this.fail(t);
      }
    }
    return doc;
  }

  private operation(): Operation {
    const t = this.next();
    const op: Operation = { kind: t.text === 'mutation' ? 'mutation' : 'query', variables: [], selections: [], loc: t.loc };
    if (this.peek().kind === 'name') op.name = this.name();
    if (this.is('(')) {
      this.next();
      while (!this.is(')')) {
        const at = this.expect('$').loc;
        const name = this.name();
        this.expect(':');
        const def: VariableDef = { name, type: this.typeRef(), loc: at };
        if (this.is('=')) {
          this.next();
          def.defaultValue = this.value();
        }
        op.variables.push(def);
      }
      this.next();
    }
    this.directives();
    op.selections = this.selectionSet();
    return op;
  }

  private typeRef(): TypeRef {
    let ref: TypeRef;
    if (this.is('[')) {
      this.next();
      ref = { list: this.typeRef(), nonNull: false };
      this.expect(']');
    } else {
      ref = { name: this.name(), nonNull: false };
    }
    if (this.is('!')) {
      this.next();
      ref.nonNull = true;
    }
    return ref;
  }

  private directives(): void {
    while (this.is('@')) {
      this.next();
      this.name();
      if (this.is('(')) this.args();
    }
  }

  private selectionSet(): Selection[] {
    this.expect('{');
    const out: Selection[] = [];
    while (!this.is('}')) out.push(this.selection());
    this.next();
    return out;
  }

  private selection(): Selection {
    const t = this.peek();
    if (t.kind === 'punct' && t.text === '...') {
      this.next();
      if (this.is('on')) {
        this.next();
        const typeCondition = this.name();
        this.directives();
        return { kind: 'inline', typeCondition, selections: this.selectionSet() };
      }
      if (this.is('{') || this.is('@')) {
        this.directives();
        return { kind: 'inline', selections: this.selectionSet() };
      }
      return { kind: 'spread', name: this.name(), loc: t.loc };
    }
    const first = this.name();
    const field: Field = { kind: 'field', name: first, args: {}, loc: t.loc };
    if (this.is(':')) {
      this.next();
      field.alias = first;
      field.name = this.name();
    }
    if (this.is('(')) field.args = this.args();
    this.directives();
    if (this.is('{')) field.selections = this.selectionSet();
    return field;
  }

  private args(): Record<string, Value> {
    this.expect('(');
    const out: Record<string, Value> = {};
    while (!this.is(')')) {
      const name = this.name();
      this.expect(':');
      out[name] = this.value();
    }
    this.next();
    return out;
  }

  private value(): Value {
    const t = this.next();
    if (t.kind === 'punct' && t.text === '$') return { kind: 'var', name: this.name() };
    if (t.kind === 'number') return { kind: 'const', value: t.value as number };
    if (t.kind === 'string') return { kind: 'const', value: t.value as string };
    if (t.kind === 'name') {
      if (t.text === 'true' || t.text === 'false') return { kind: 'const', value: t.text === 'true' };
      if (t.text === 'null') return { kind: 'const', value: null };
      return { kind: 'enum', value: t.text };
    }
    if (t.kind === 'punct' && t.text === '[') {
      const items: Value[] = [];
      while (!this.is(']')) items.push(this.value());
      this.next();
      return { kind: 'list', items };
    }
    if (t.kind === 'punct' && t.text === '{') {
      const fields: Record<string, Value> = {};
      while (!this.is('}')) {
        const name = this.name();
        this.expect(':');
        fields[name] = this.value();
      }
      this.next();
      return { kind: 'object', fields };
    }
    this.fail(t);
  }
}

export function parseDocument(src: string): Document {
  return new Parser(tokenize(src)).document();
}

/** Resolves a parsed value against the request's variables into plain JSON. */
export function valueToJs(v: Value, vars: Record<string, unknown>): unknown {
  switch (v.kind) {
    case 'var':
      return vars[v.name] ?? null;
    case 'const':
    case 'enum':
      return v.value;
    case 'list':
      return v.items.map((i) => valueToJs(i, vars));
    case 'object':
      return Object.fromEntries(Object.entries(v.fields).map(([k, f]) => [k, valueToJs(f, vars)]));
  }
}
