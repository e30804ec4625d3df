import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServingCert as make, type ServingCert } from '../../src/tools/demo/certs.js';

/** A CA and a serving certificate for 127.0.0.1 and localhost, in a fresh temporary folder. */
export function makeServingCert(): ServingCert {
  return make(mkdtempSync(join(tmpdir(), 'sibyl-tls-')));
}
