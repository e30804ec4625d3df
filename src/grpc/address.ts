import { isIP } from 'node:net';
import { SibylError } from '../util/errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * "127.0.0.1:8080", "[::1]:8080", "localhost:0" or ":8080" (all interfaces, as Go's net.Listen reads
 * it). Port 0 asks the system for a free port. Throws ERR_USAGE with the flag's name on anything else.
 */
export function parseListenAddress(text: string, flag = '--listen'): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new SibylError(
      'ERR_USAGE',
      `${flag} "${text}" is not host:port (for example 127.0.0.1:8080 or :8080)`,
    );
  }
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

/** host:port, with brackets around an IPv6 host. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Whether `text` is an address another host can dial as given: an IP literal (Envoy's EDS resolves no
 * names) that is not the unspecified address, and a port other than 0.
 */
export function isDialableIp(text: string): boolean {
  try {
    const { host, port } = parseListenAddress(text);
    return isIP(host) !== 0 && port > 0 && host !== '0.0.0.0' && host !== '::';
  } catch {
    return false;
  }
}
