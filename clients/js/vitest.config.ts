import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each integration file starts its own jetchat: one at a time on a small machine.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
