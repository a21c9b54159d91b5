/**
 * Builds the dashboard (dist/dashboard) for the tests when it is missing or
 * older than its sources, so a clean clone's `npm test` and a single
 * `npx vitest run test/dashboard/...` both test the page as it is now.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCES = [path.join(ROOT, 'dashboards/web'), path.join(ROOT, 'src/commands/types.ts'), path.join(ROOT, 'src/state/types.ts')];
const BUILT = path.join(ROOT, 'dist/dashboard/index.html');

function newestMtime(entry: string): number {
  const stat = statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(entry).map((name) => newestMtime(path.join(entry, name))));
}

export async function ensureDashboardBuilt(): Promise<void> {
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= Math.max(...SOURCES.map(newestMtime))) return;
  const { build } = await import('vite');
  await build({ configFile: path.join(ROOT, 'dashboards/web/vite.config.ts'), logLevel: 'warn' });
}
