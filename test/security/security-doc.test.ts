/**
 * SECURITY.md says, for each attacker, which test shows what stops it. A
 * renamed test or a moved file would leave it claiming what nothing shows:
 * every file it links must exist, and every test it names after a link must
 * be in that file. Its attacker tables must each cite a test in every row.
 * (The dependency table is dependency-floor.test.ts's.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { citationProblem, citations, type Citation } from '../support/doc-links.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const lines = readFileSync(path.join(ROOT, 'SECURITY.md'), 'utf8').split('\n');

const cells = (row: string) => row.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());

/** The "shown by" cells of the attacker tables, in order. */
function shownByCells(): string[] {
  const found: string[] = [];
  let inTable = false;
  for (const line of lines) {
    if (line.startsWith('| tries |')) inTable = line.trimEnd().endsWith('| shown by |');
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable && !line.startsWith('|---')) found.push(cells(line).at(-1)!);
  }
  return found;
}

describe('SECURITY.md', () => {
  it('has the four attackers, each with a table whose every row cites a test', () => {
    for (const attacker of ['A stranger on the network', 'A compromised device', 'A malicious page in an operator\'s browser', 'A noisy neighbour device']) {
      expect(lines, attacker).toContain(`### ${attacker}`);
    }
    const shown = shownByCells();
    expect(shown.length).toBeGreaterThan(30);
    for (const cell of shown) expect(cell).toMatch(/\]\(test\/[^)]+\)|same file|the table below/);
  });

  it('links files that exist and names tests that are in them', () => {
    const cited: Citation[] = [];
    let lastFile: string | undefined;
    for (const cell of shownByCells()) {
      const result = citations(cell, lastFile);
      cited.push(...result.cited);
      lastFile = result.lastFile;
    }
    // Outside the tables, a link with the test names that follow it on the same line.
    for (const line of lines.filter((l) => !l.startsWith('|') && l.includes(']('))) cited.push(...citations(line).cited);
    expect(cited.filter((c) => c.name !== undefined).length).toBeGreaterThan(40);
    expect(cited.map((c) => citationProblem(ROOT, c)).filter(Boolean)).toEqual([]);
  });
});
