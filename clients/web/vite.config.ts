// The app builds into dist/, which the jetchat binary embeds (rust-embed) and serves at `/`.
// The client is taken from its source (../js/src), so a fresh clone builds with this
// package's `npm ci` alone. The build is deterministic: the same sources give the same dist/
// (scripts/test.sh checks the committed one).
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  base: '/',
  resolve: {
    alias: { '@jetchat/client': fileURLToPath(new URL('../js/src/index.ts', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  server: { proxy: { '/ws': { target: 'ws://127.0.0.1:8000', ws: true }, '^/(chats|messages|users|upload|media|sync|dev|app-config.json)': 'http://127.0.0.1:8000' } },
});
