// The generated types are what `npm run gen` makes from docs/openapi.json and
// docs/schemas/*.json today: if the server's frames or REST bodies change, this fails until
// the types are regenerated (and the code that uses them still type-checks).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain ESM script without types
import { generate, outDir } from '../scripts/gen.mjs';

it('the committed generated types match the schemas', async () => {
  const files: Record<string, string> = await generate();
  expect(Object.keys(files).sort()).toEqual(['client_frames.ts', 'frames.ts', 'openapi.ts']);
  for (const [name, text] of Object.entries(files)) {
    const committed = await readFile(join(outDir, name), 'utf8');
    expect(committed, `src/generated/${name} is out of date: run \`npm run gen\``).toBe(text);
  }
});
