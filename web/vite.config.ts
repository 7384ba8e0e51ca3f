// Builds the web UI (PRODUCT.md §7) into web/dist, served by the oddjob process
// itself (server/http/static.ts). No inline scripts or styles end up in the
// output, so the server's strict Content-Security-Policy holds.
//   npm run build:web            one-off build
//   npx vite --config web/vite.config.ts   dev server; proxies the API to ODDJOB_DEV_BACKEND
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const backend = process.env.ODDJOB_DEV_BACKEND ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: true,
    // The polyfill would be an inline-free module too, but every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    // Keep fonts/icons as files: data: URLs would need a wider CSP.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/api': { target: backend, ws: true, changeOrigin: false },
      '/auth': { target: backend },
    },
  },
});
