/**
 * RELIABILITY.md says which test or scenario injects each fault. A renamed
 * test or a moved file would leave a row claiming what nothing shows any
 * more: every file it links must exist, every test named in its "where"
 * column must be in that file, and every `npm run bench -- NAME` must be a
 * scenario of bench/run.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const doc = readFileSync(path.join(ROOT, 'RELIABILITY.md'), 'utf8');
const rows = doc.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| fault') && !line.startsWith('|---'));
const cells = (row: string) => row.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''));

describe('RELIABILITY.md', () => {
  it('has a row for each fault, each naming where it is injected', () => {
    expect(rows.length).toBeGreaterThan(25);
    for (const row of rows) expect(cells(row)[2], row).toMatch(/\[[^\]]+\]\([^)]+\)|same (test|file)|npm run bench -- /);
  });

  it('links files that exist, names tests that are in them, and bench scenarios that exist', () => {
    const scenarios = readFileSync(path.join(ROOT, 'bench/run.ts'), 'utf8');
    let file: string | undefined;
    for (const row of rows) {
      const where = cells(row)[2]!;
      for (const [, link] of where.matchAll(/\]\(([^)]+)\)/g)) {
        expect(existsSync(path.join(ROOT, link!)), `${link} (row: ${row})`).toBe(true);
        file = link;
      }
      for (const [, name] of where.matchAll(/"([^"]+)"/g)) {
        // Source quotes escape apostrophes ('the hub\'s'); the doc shortens long names with "…": each part is in the file.
        const text = readFileSync(path.join(ROOT, file!), 'utf8').replace(/\\'/g, "'");
        for (const part of name!.split('…').filter(Boolean)) expect(text, `"${name}" in ${file}`).toContain(part);
      }
      for (const [, scenario] of where.matchAll(/npm run bench -- (\S+)`/g)) {
        expect(scenarios, `scenario ${scenario}`).toContain(`'${scenario}'`);
      }
    }
  });
});
