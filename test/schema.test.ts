import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import { renderJson } from '../src/report/json.js';
import { loadTruth } from './helpers/truth.js';

/**
 * schema/report.schema.json documents `--format json`. Consumers get an open schema (fields may be
 * added); here every object is closed, so a field the report has and the schema does not document
 * fails the test.
 */
const schema = JSON.parse(readFileSync('schema/report.schema.json', 'utf8')) as Record<string, unknown>;

function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (!node || typeof node !== 'object') return node;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) copy[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, closed(v)])) : closed(value);
  if ('properties' in copy && !('additionalProperties' in copy)) copy.additionalProperties = false;
  return copy;
}

const ajv = new Ajv2020({ allErrors: true, strict: true });
const validateOpen = ajv.compile(schema);
const validateClosed = new Ajv2020({ allErrors: true, strict: true }).compile(closed(schema) as object);

const FIXTURES = 'fixtures';
const truths = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.truth.json'))
  .map((name) => loadTruth(join(FIXTURES, name)));

describe('the JSON report matches schema/report.schema.json', () => {
  it.each(truths.map((t) => [t.scenario, t] as const))('fixture %s', async (_name, truth) => {
    const report = JSON.parse(renderJson(await analyze(truth.files.map((f) => join(FIXTURES, f)), { ports: truth.servicePorts, command: 'closewait analyze test' })));
    expect(validateClosed(report), JSON.stringify(validateClosed.errors?.slice(0, 5))).toBe(true);
    expect(validateOpen(report)).toBe(true);
  });

  it('an unreadable input and an empty report still match', async () => {
    const report = JSON.parse(renderJson(await analyze(['package.json'])));
    expect(validateClosed(report), JSON.stringify(validateClosed.errors?.slice(0, 5))).toBe(true);
  });

  it('the schema rejects what breaks the contract', async () => {
    const report = JSON.parse(renderJson(await analyze([join(FIXTURES, 'incident.pcap')])));
    expect(validateOpen(report)).toBe(true);
    const broken = structuredClone(report);
    broken.findings[0].family = 'leak';
    expect(validateOpen(broken)).toBe(false);
    const renamed = structuredClone(report);
    delete renamed.servers[0].onsetTime;
    expect(validateOpen(renamed)).toBe(false);
    const extra = structuredClone(report);
    extra.servers[0].somethingNew = 1;
    expect(validateOpen(extra)).toBe(true);
    expect(validateClosed(extra)).toBe(false);
  });
});
