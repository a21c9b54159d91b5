/**
 * Builds what the tests serve or run from dist/ when it is missing or older
 * than its sources, once, in vitest's global setup (before any test file
 * starts): the dashboard (dist/dashboard, served by every hub at /) and the
 * hub and device-sim (dist/src, dist/device-sim, run by `npm run demo`).
 * A test that rebuilt dist/ itself would pull files from under the other
 * worker's hubs; so a clean clone's `npm test` and a single
 * `npx vitest run test/...` both test what the sources say now.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const at = (...parts: string[]) => path.join(ROOT, ...parts);

function newestMtime(entry: string): number {
  const stat = statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(entry).map((name) => newestMtime(path.join(entry, name))));
}

function isFresh(built: string, sources: string[]): boolean {
  return existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.map(newestMtime));
}

export async function ensureDashboardBuilt(): Promise<void> {
  if (isFresh(at('dist/dashboard/index.html'), [at('dashboards/web'), at('src/commands/types.ts'), at('src/state/types.ts'), at('src/alerts/types.ts')])) return;
  const { build } = await import('vite');
  await build({ configFile: at('dashboards/web/vite.config.ts'), logLevel: 'warn' });
}

/** `tsc -p tsconfig.build.json` and the postbuild chmod, as `npm run build` does for the hub. */
export function ensureHubBuilt(): void {
  const sources = [at('src'), at('device-sim'), at('tsconfig.json'), at('tsconfig.build.json'), at('package-lock.json')];
  if (isFresh(at('dist/src/main.js'), sources) && isFresh(at('dist/device-sim/cli.js'), sources)) return;
  execFileSync(process.execPath, [at('node_modules/typescript/bin/tsc'), '-p', at('tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  chmodSync(at('dist/device-sim/cli.js'), 0o755);
}
