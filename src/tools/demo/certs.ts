import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServingCert {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  dir: string;
}

/**
 * A throwaway CA and a serving certificate for 127.0.0.1 and `dnsNames`, made with openssl: what the
 * demo and the tests give the operator's control API. A cluster install gets its certificate from the
 * chart (a Secret, generated or from cert-manager).
 */
export function makeServingCert(
  dir: string,
  days = 2,
  dnsNames: readonly string[] = ['localhost'],
): ServingCert {
  mkdirSync(dir, { recursive: true });
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    String(days),
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=sibyl-local-ca',
  );
  run(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'tls.key',
    '-out',
    'tls.csr',
    '-subj',
    '/CN=sibyl-operator',
  );
  const san = ['IP:127.0.0.1', ...dnsNames.map((d) => `DNS:${d}`)].join(',');
  writeFileSync(join(dir, 'ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  run(
    'x509',
    '-req',
    '-in',
    'tls.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    String(days),
    '-out',
    'tls.crt',
    '-extfile',
    'ext',
  );
  const read = (f: string) => readFileSync(join(dir, f));
  return { ca: read('ca.crt'), cert: read('tls.crt'), key: read('tls.key'), dir };
}
