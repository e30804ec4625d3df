import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { BackendPoolSpec } from '../api/backendpool.js';

/** Where a pool's backends are, resolved from a Service's EndpointSlices or from static addresses. */
export interface ResolvedEndpoint {
  address: string; // host:port, [v6]:port
  pod?: string;
  ready: boolean;
  zone?: string;
  node?: string;
}

export type Resolution =
  | { ok: true; endpoints: ResolvedEndpoint[] }
  | { ok: false; reason: 'ServiceNotFound' | 'PortNotFound' | 'PortAmbiguous'; message: string };

const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export function resolveStatic(spec: BackendPoolSpec): Resolution {
  return {
    ok: true,
    endpoints: (spec.endpoints ?? []).map((e) => ({
      address: e.address,
      ready: true,
      ...(e.name ? { pod: e.name } : {}),
    })),
  };
}

/**
 * The ready endpoints of spec.service: the Service port is found by name or number (or is the only
 * one), and each EndpointSlice names its target port by the Service port's name. An endpoint whose
 * `ready` condition is absent counts as ready, as the EndpointSlice API documents. FQDN slices are
 * honoured too: they are how backends on loopback are listed (the API refuses 127.0.0.0/8 in IPv4
 * slices), one slice per port, as the demo and the tests do.
 */
export function resolveService(
  spec: BackendPoolSpec,
  namespace: string,
  service: V1Service | undefined,
  slices: readonly V1EndpointSlice[],
): Resolution {
  const ref = spec.service;
  if (!ref) return resolveStatic(spec);
  if (!service) {
    return {
      ok: false,
      reason: 'ServiceNotFound',
      message: `Service ${namespace}/${ref.name} does not exist`,
    };
  }
  const ports = service.spec?.ports ?? [];
  let svcPort;
  if (ref.port === undefined) {
    if (ports.length !== 1) {
      return {
        ok: false,
        reason: 'PortAmbiguous',
        message: `Service ${ref.name} has ${ports.length} ports (${ports.map((p) => p.name ?? p.port).join(', ')}): set spec.service.port`,
      };
    }
    svcPort = ports[0];
  } else {
    svcPort = ports.find((p) => (typeof ref.port === 'number' ? p.port === ref.port : p.name === ref.port));
  }
  if (!svcPort) {
    const have = ports.map((p) => (p.name ? `${p.name}/${p.port}` : String(p.port))).join(', ') || 'none';
    return {
      ok: false,
      reason: 'PortNotFound',
      message: `Service ${ref.name} has no port ${ref.port} (it has: ${have})`,
    };
  }
  const portName = svcPort.name ?? '';
  const seen = new Map<string, ResolvedEndpoint>();
  for (const slice of slices) {
    const port = slice.ports?.find((p) => (p.name ?? '') === portName)?.port;
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const ip = ep.addresses?.[0];
      if (!ip) continue;
      const address = slice.addressType === 'FQDN' ? `${ip}:${port}` : hostPort(ip, port);
      const e: ResolvedEndpoint = { address, ready: ep.conditions?.ready !== false };
      if (ep.targetRef?.kind === 'Pod' && ep.targetRef.name) e.pod = ep.targetRef.name;
      if (ep.zone) e.zone = ep.zone;
      if (ep.nodeName) e.node = ep.nodeName;
      // The same endpoint may appear in two slices during a move; ready wins.
      const prev = seen.get(address);
      if (!prev || (!prev.ready && e.ready)) seen.set(address, e);
    }
  }
  return { ok: true, endpoints: [...seen.values()].sort((a, b) => a.address.localeCompare(b.address)) };
}
