import { readFileSync } from 'node:fs';

/** The package's version, read once from package.json (the same relative path from src/ and dist/). */
export const SIBYL_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
