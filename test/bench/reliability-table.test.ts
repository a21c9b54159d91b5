/**
 * RELIABILITY.md says which test or scenario injects each fault and makes
 * each attack. A renamed test or a moved file would leave a row claiming
 * what nothing shows any more: every file it links must exist, every test
 * named in its "where" column must be in that file (test/support/doc-links.ts),
 * and every `npm run bench -- NAME` must be a scenario of bench/run.ts.
 * The attack tables must give every row an outcome and what was lost, and
 * name each attack issue 18 asks to be tried.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { citationProblem, citations, type Citation } from '../support/doc-links.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const doc = readFileSync(path.join(ROOT, 'RELIABILITY.md'), 'utf8');

type Table = { kind: 'fault' | 'attack'; header: string[]; rows: string[][] };

const cells = (row: string) => row.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());

/** Every table of the doc whose first column is "fault" or "attack", with its rows split into cells. */
function tables(): Table[] {
  const found: Table[] = [];
  let current: Table | undefined;
  for (const line of doc.split('\n')) {
    if (!line.startsWith('|')) { current = undefined; continue; }
    if (line.startsWith('|---')) continue;
    const row = cells(line);
    if (!current) {
      current = row[0] === 'fault' || row[0] === 'attack' ? { kind: row[0], header: row, rows: [] } : undefined;
      if (current) found.push(current);
    } else {
      current.rows.push(row);
    }
  }
  return found;
}

const all = tables();
const rowsOf = (kind: Table['kind']) => all.filter((t) => t.kind === kind).flatMap((t) => t.rows.map((row) => ({ row, where: row[t.header.indexOf('where')]!, table: t })));

describe('RELIABILITY.md', () => {
  it('has a row for each fault, each naming where it is injected', () => {
    const faults = rowsOf('fault');
    expect(faults.length).toBeGreaterThan(25);
    for (const { row, where } of faults) expect(where, row.join(' | ')).toMatch(/\[[^\]]+\]\([^)]+\)|same (test|file)|npm run bench -- /);
  });

  it('has an Attacks section whose every row names where the attack is made and an outcome a test sees', () => {
    expect(doc).toMatch(/^## Attacks$/m);
    const attacks = rowsOf('attack');
    expect(attacks.length).toBeGreaterThan(40);
    for (const { row, where, table } of attacks) {
      expect(table.header).toEqual(['attack', 'how', 'where', 'outcome', 'lost']);
      expect(where, row[0]).toMatch(/\[[^\]]+\]\([^)]+\)|same (test|file)|npm run bench -- /);
      expect(row[3]!.length, `${row[0]}: outcome`).toBeGreaterThan(2);
      expect(row[4]!.length, `${row[0]}: lost`).toBeGreaterThan(0);
    }
    // Most answers are a code a device or a browser sees: an HTTP status, an ACK code, a close code.
    const coded = attacks.filter(({ row }) => /\b[1-5]\d\d\b|ACK \d|\b10\d\d\b/.test(row[3]!));
    expect(coded.length).toBeGreaterThan(attacks.length * 0.6);
    // The attacks issue 18 asks to be tried are each in the table.
    const names = attacks.map(({ row }) => row[0]).join('\n');
    for (const attack of ['slowloris', 'header flood', 'connection flood, total', 'connection flood, one address', 'handshake storm', 'message flood', 'reading flood',
      'huge frames', 'malformed CBOR', 'deep nesting', 'names explosion', 'series explosion', 'raw RFC 6455 violations', 'fuzzing', 'cross-site WebSocket hijacking',
      'token in the URL', 'wrong device credentials', 'dead-letter flood', 'a cookie without HttpOnly or SameSite', 'operator endpoint without the token']) {
      expect(names).toContain(attack);
    }
  });

  it('links files that exist, names tests that are in them, and bench scenarios that exist', () => {
    const scenarios = readFileSync(path.join(ROOT, 'bench/run.ts'), 'utf8');
    const cited: Citation[] = [];
    for (const kind of ['fault', 'attack'] as const) {
      let lastFile: string | undefined;
      for (const { where } of rowsOf(kind)) {
        const result = citations(where, lastFile);
        cited.push(...result.cited);
        lastFile = result.lastFile;
        for (const [, scenario] of where.matchAll(/npm run bench -- (\S+)`/g)) expect(scenarios, `scenario ${scenario}`).toContain(`'${scenario}'`);
      }
    }
    expect(cited.filter((c) => c.name !== undefined).length).toBeGreaterThan(60);
    expect(cited.map((c) => citationProblem(ROOT, c)).filter(Boolean)).toEqual([]);
  });
});
