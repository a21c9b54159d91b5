/**
 * Builds the operator page (dashboards/web) into dist/dashboard, which the hub
 * serves at `/` (src/api/dashboard-page.ts). Everything is bundled: no CDN.
 * `npm run build` and the test run build it; `npm run dev:dashboard` serves it
 * with reload, proxying the API and live stream to a hub on :8080.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const hub = process.env.PULSEWIRE_HUB_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/v1/live': { target: hub, ws: true },
      '/v1': hub,
      '/metrics': hub,
    },
  },
});
