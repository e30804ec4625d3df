import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { createServer } from 'node:net';

/**
 * RFC 6761 §6.3: "localhost" and every name under ".localhost" are the loopback address, and name
 * resolution libraries should say so without asking DNS. glibc does not for subdomains, so sibyl's
 * dialers do. It matters because the API server refuses 127.0.0.0/8 in EndpointSlices: backends on
 * loopback (the demo, the tests) are listed as FQDN slices such as "checkout-a.localhost".
 */
export function loopbackFor(host: string): string | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') ? '127.0.0.1' : undefined;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family: number,
) => void;

/**
 * A `lookup` for net/tls/http2 connect options: *.localhost is loopback (above), anything else goes
 * to the system resolver. Handles `all: true`, which Node's happy-eyeballs connect asks for.
 */
export function loopbackAwareLookup(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback,
): void {
  const lb = loopbackFor(hostname);
  if (lb === undefined) {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) callback(err, '', 0);
      else if (options.all) callback(null, addresses, 0);
      else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
    });
    return;
  }
  if (options.all) callback(null, [{ address: lb, family: 4 }], 4);
  else callback(null, lb, 4);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it; another process may take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
