/**
 * `npm audit` cannot be used here, so the advisories known for each
 * production dependency are written down (dependency-floors.ts, gathered on
 * the date it names) and this test holds package-lock.json to them: every
 * copy of a listed package, nested copies and dev-only copies included,
 * must resolve to a version its floor allows. It also holds SECURITY.md to
 * the same list, both ways, and fails when a production dependency arrives
 * that nobody looked up.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { ADVISORIES_CHECKED_ON, DEPENDENCY_FLOORS, type DependencyFloor } from './dependency-floors.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

type LockFile = { packages: Record<string, { version?: string; dev?: boolean; link?: boolean }> };
type Copy = { where: string; version: string; dev: boolean };

/** Every resolved copy of `name` in a v2/v3 lock file, wherever npm nested it. */
export function copiesOf(lock: LockFile, name: string): Copy[] {
  const suffix = `node_modules/${name}`;
  return Object.entries(lock.packages)
    .filter(([where, entry]) => (where === suffix || where.endsWith(`/${suffix}`)) && !entry.link && entry.version !== undefined)
    .map(([where, entry]) => ({ where, version: entry.version!, dev: entry.dev === true }));
}

/** The copies that resolve outside their floor's allowed range. */
export function belowFloor(lock: LockFile, floors: readonly DependencyFloor[]): Array<Copy & { name: string; safe: string }> {
  return floors.flatMap((floor) => copiesOf(lock, floor.name)
    .filter((copy) => !semver.satisfies(copy.version, floor.safe))
    .map((copy) => ({ ...copy, name: floor.name, safe: floor.safe })));
}

const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as LockFile;
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const securityDoc = readFileSync(path.join(ROOT, 'SECURITY.md'), 'utf8');

/** The rows of SECURITY.md's dependency table, cells split on unescaped pipes and unescaped. */
function dependencyRows(doc: string): string[][] {
  const section = doc.slice(doc.indexOf('## Dependencies'));
  const end = section.indexOf('\n## ', 3);
  return (end > 0 ? section.slice(0, end) : section).split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|')));
}

describe('dependency floors', () => {
  it('the floors are valid semver ranges and every advisory names its fix', () => {
    for (const floor of DEPENDENCY_FLOORS) {
      expect(semver.validRange(floor.safe), `${floor.name}: ${floor.safe}`).not.toBeNull();
      expect(floor.safe === '*', `${floor.name}: a floor with no advisory, or advisories with no floor`).toBe(floor.advisories.length === 0);
      for (const advisory of floor.advisories) {
        expect(advisory.id, floor.name).toMatch(/^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$/);
        if (advisory.cve) expect(advisory.cve, advisory.id).toMatch(/^CVE-\d{4}-\d{4,}$/);
        expect(advisory.fixedIn, advisory.id).toMatch(/\d+\.\d+\.\d+/);
      }
    }
  });

  it('every production dependency in package.json has been looked up', () => {
    const listed = new Set(DEPENDENCY_FLOORS.map((f) => f.name));
    expect(Object.keys(manifest.dependencies).filter((name) => !listed.has(name))).toEqual([]);
  });

  it('every listed package is in the lock, and no copy of one resolves below its floor', () => {
    for (const floor of DEPENDENCY_FLOORS) expect(copiesOf(lock, floor.name).length, floor.name).toBeGreaterThan(0);
    expect(belowFloor(lock, DEPENDENCY_FLOORS)).toEqual([]);
  });

  it('finds a nested or dev-only copy below its floor (the check itself can fail)', () => {
    const fake: LockFile = {
      packages: {
        '': { version: '0.1.0' },
        'node_modules/ws': { version: '8.23.0' },
        'node_modules/some-tool/node_modules/ws': { version: '8.20.0', dev: true },
        'node_modules/other/node_modules/ws': { version: '7.5.10' },
        'node_modules/fastify': { version: '5.12.4' },
        'node_modules/not-ws': { version: '1.0.0' },
      },
    };
    expect(belowFloor(fake, DEPENDENCY_FLOORS).map((c) => `${c.where}@${c.version}`).sort()).toEqual([
      'node_modules/fastify@5.12.4',
      'node_modules/other/node_modules/ws@7.5.10',
      'node_modules/some-tool/node_modules/ws@8.20.0',
    ]);
  });
});

describe('SECURITY.md and the floors agree', () => {
  const rows = dependencyRows(securityDoc);

  it('says when and from where the advisories were gathered', () => {
    expect(securityDoc).toContain(ADVISORIES_CHECKED_ON);
    expect(securityDoc).toContain('test/security/dependency-floors.ts');
  });

  it('has one row per floor, with its range and every advisory id, and no row the floors do not have', () => {
    const byName = new Map(rows.map((cells) => [cells[0]!.replace(/`/g, ''), cells]));
    expect([...byName.keys()].sort()).toEqual(DEPENDENCY_FLOORS.map((f) => f.name).sort());
    expect(rows.length).toBe(DEPENDENCY_FLOORS.length);
    for (const floor of DEPENDENCY_FLOORS) {
      const cells = byName.get(floor.name)!;
      expect(cells[2], floor.name).toBe(`\`${floor.safe}\``);
      const advisories = cells[3]!;
      for (const advisory of floor.advisories) {
        expect(advisories, floor.name).toContain(advisory.id);
        if (advisory.cve) expect(advisories, advisory.id).toContain(advisory.cve);
        expect(advisories, advisory.id).toContain(advisory.fixedIn);
      }
      if (floor.advisories.length === 0) expect(advisories, floor.name).toMatch(/^none known/);
      // The versions the row says are in the lock are the lock's.
      for (const copy of copiesOf(lock, floor.name)) expect(cells[1], `${floor.name} ${copy.where}`).toContain(copy.version);
    }
  });
});
