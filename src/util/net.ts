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

/** host:port or [v6]:port → parts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
