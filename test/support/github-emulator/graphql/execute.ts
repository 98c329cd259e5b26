/**
 * Validates and executes a parsed operation against the emulator's schema, producing GitHub's
 * response shapes: validation problems answer `{errors}` with no `data` (as GitHub does, before
 * running anything), resolver failures null the field and add an error with `type`, `path` and
 * `locations` (e.g. NOT_FOUND for an unknown repository).
 */
import type { Document, Field, Loc, Operation, Selection, TypeRef } from './parse.js';
import { valueToJs } from './parse.js';

export type Args = Record<string, unknown>;

export interface FieldDef<P, C> {
  /** Name of the returned type: an object type of the schema, or a scalar (anything else). */
  type: string;
  list?: boolean;
  resolve(parent: P, args: Args, ctx: C): unknown;
}

export interface Schema<C> {
  types: Record<string, Record<string, FieldDef<never, C>>>;
  /** Abstract types (interfaces) and how to find a value's concrete type. */
  abstract: Record<string, { possible: string[]; resolveType(value: unknown): string }>;
}

/** Thrown by resolvers for GitHub's typed errors (NOT_FOUND, UNPROCESSABLE, …). */
export class FieldError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown for argument problems GitHub reports without a `type` (e.g. connection without first/last). */
export class ArgumentError extends Error {}

export interface GraphQLError {
  message: string;
  type?: string;
  path?: Array<string | number>;
  locations?: Loc[];
  extensions?: Record<string, unknown>;
}

export interface ExecResult {
  data?: Record<string, unknown>;
  errors?: GraphQLError[];
}

function fieldsOf<C>(schema: Schema<C>, typeName: string): Record<string, FieldDef<never, C>> | undefined {
  const abs = schema.abstract[typeName];
  if (abs) {
    // An interface exposes the fields all its implementations share.
    const [first, ...rest] = abs.possible.map((t) => schema.types[t] ?? {});
    if (!first) return {};
    return Object.fromEntries(Object.entries(first).filter(([k]) => rest.every((r) => k in r)));
  }
  return schema.types[typeName];
}

const isComposite = <C>(schema: Schema<C>, t: string): boolean => t in schema.types || t in schema.abstract;

function validate<C>(schema: Schema<C>, doc: Document, op: Operation): GraphQLError[] {
  const errors: GraphQLError[] = [];
  const walk = (typeName: string, sels: Selection[], path: string[]): void => {
    const fields = fieldsOf(schema, typeName) ?? {};
    for (const s of sels) {
      if (s.kind === 'spread') {
        const frag = doc.fragments.get(s.name);
        if (!frag) errors.push({ message: `Fragment ${s.name} was used, but not defined`, locations: [s.loc], path: [...path, `... ${s.name}`] });
        else walk(frag.typeCondition, frag.selections, [...path, `... ${s.name}`]);
        continue;
      }
      if (s.kind === 'inline') {
        walk(s.typeCondition ?? typeName, s.selections, [...path, `... on ${s.typeCondition ?? typeName}`]);
        continue;
      }
      if (s.name === '__typename') continue;
      const def = fields[s.name];
      const here = [...path, s.alias ?? s.name];
      if (!def) {
        errors.push({
          path: here,
          extensions: { code: 'undefinedField', typeName, fieldName: s.name },
          locations: [s.loc],
          message: `Field '${s.name}' doesn't exist on type '${typeName}'`,
        });
        continue;
      }
      const composite = isComposite(schema, def.type);
      if (composite && !s.selections) {
        errors.push({
          path: here,
          extensions: { code: 'selectionMismatch', nodeName: `field '${s.name}'`, typeName: def.type },
          locations: [s.loc],
          message: `Field must have selections (field '${s.name}' returns ${def.type} but has no selections. Did you mean '${s.name} { ... }'?)`,
        });
      } else if (!composite && s.selections) {
        errors.push({
          path: here,
          extensions: { code: 'selectionMismatch', nodeName: `field '${s.name}'`, typeName: def.type },
          locations: [s.loc],
          message: `Selections can't be made on scalars (field '${s.name}' returns ${def.type} but has selections [${s.selections.map((x) => (x.kind === 'field' ? x.name : '...')).join(', ')}])`,
        });
      } else if (s.selections) {
        walk(def.type, s.selections, here);
      }
    }
  };
  const root = op.kind === 'mutation' ? 'Mutation' : 'Query';
  walk(root, op.selections, [`${op.kind} ${op.name ?? 'anonymous'}`]);
  return errors;
}

function typeText(t: TypeRef): string {
  const inner = t.list ? `[${typeText(t.list)}]` : (t.name ?? '');
  return t.nonNull ? `${inner}!` : inner;
}

function checkVariables(op: Operation, vars: Record<string, unknown>): GraphQLError[] {
  const errors: GraphQLError[] = [];
  for (const v of op.variables) {
    if (v.type.nonNull && (vars[v.name] === undefined || vars[v.name] === null) && v.defaultValue === undefined) {
      errors.push({
        extensions: { value: null, problems: [{ path: [], explanation: 'Expected value to not be null' }] },
        locations: [v.loc],
        message: `Variable $${v.name} of type ${typeText(v.type)} was provided invalid value`,
      });
    }
  }
  return errors;
}

export function execute<C>(schema: Schema<C>, doc: Document, op: Operation, rawVars: Record<string, unknown>, ctx: C): ExecResult {
  const vars: Record<string, unknown> = { ...rawVars };
  for (const v of op.variables) if (vars[v.name] === undefined && v.defaultValue) vars[v.name] = valueToJs(v.defaultValue, {});
  const problems = [...checkVariables(op, vars), ...validate(schema, doc, op)];
  if (problems.length) return { errors: problems };

  const errors: GraphQLError[] = [];

  const collect = (typeName: string, runtimeType: string, sels: Selection[]): Field[] => {
    const out: Field[] = [];
    for (const s of sels) {
      if (s.kind === 'field') out.push(s);
      else {
        const cond = s.kind === 'inline' ? s.typeCondition : doc.fragments.get(s.name)?.typeCondition;
        const body = s.kind === 'inline' ? s.selections : (doc.fragments.get(s.name)?.selections ?? []);
        if (!cond || cond === runtimeType || cond === typeName) out.push(...collect(typeName, runtimeType, body));
      }
    }
    return out;
  };

  const complete = (typeName: string, value: unknown, field: Field, path: Array<string | number>): unknown => {
    if (value === null || value === undefined) return null;
    if (!isComposite(schema, typeName)) return value;
    const abs = schema.abstract[typeName];
    const runtime = abs ? abs.resolveType(value) : typeName;
    const fields = schema.types[runtime] ?? {};
    const out: Record<string, unknown> = {};
    for (const f of collect(typeName, runtime, field.selections ?? [])) {
      const key = f.alias ?? f.name;
      if (f.name === '__typename') {
        out[key] = runtime;
        continue;
      }
      out[key] = resolveField(fields[f.name], value, f, [...path, key]);
    }
    return out;
  };

  const resolveField = (def: FieldDef<never, C> | undefined, parent: unknown, f: Field, path: Array<string | number>): unknown => {
    if (!def) return null;
    const args: Args = Object.fromEntries(Object.entries(f.args).map(([k, v]) => [k, valueToJs(v, vars)]));
    let value: unknown;
    try {
      value = (def.resolve as (p: unknown, a: Args, c: C) => unknown)(parent, args, ctx);
    } catch (e) {
      if (e instanceof FieldError) errors.push({ type: e.type, path, locations: [f.loc], message: e.message });
      else if (e instanceof ArgumentError) errors.push({ path, locations: [f.loc], message: e.message });
      else throw e;
      return null;
    }
    if (def.list && Array.isArray(value)) return value.map((v, i) => complete(def.type, v, f, [...path, i]));
    return complete(def.type, value, f, path);
  };

  const rootType = op.kind === 'mutation' ? 'Mutation' : 'Query';
  const data = complete(rootType, {}, { kind: 'field', name: rootType, args: {}, selections: op.selections, loc: op.loc }, []) as Record<string, unknown>;
  return errors.length ? { data, errors } : { data };
}
