import * as net from 'node:net';

/**
 * A Kubernetes Service in front of processes on loopback, for tests that kill one of them: a TCP
 * listener that sends each new connection to one of the backends whose readiness probe (an HTTP GET
 * answering 200) passed last time, round robin, as kube-proxy does with a Service's ready endpoints.
 * Probes run every `periodMs` (a readinessProbe's periodSeconds); a connection with no ready backend
 * is closed at once (a Service without endpoints refuses). Established connections are left alone when
 * a backend turns unready, and die with it when it dies: as with kube-proxy.
 */
export interface ServiceBackend {
  /** host:port connections go to. */
  address: string;
  /** URL whose 200 means ready. */
  readyUrl: string;
}

export interface ServiceProxy {
  readonly address: string;
  /** The backends ready at the last probe. */
  ready(): string[];
  close(): Promise<void>;
}

export async function startServiceProxy(backends: ServiceBackend[], periodMs = 200): Promise<ServiceProxy> {
  const ready = new Set<string>();
  let next = 0;
  const sockets = new Set<net.Socket>();
  const probe = async () => {
    await Promise.all(
      backends.map(async (b) => {
        let ok = false;
        try {
          ok = (await fetch(b.readyUrl, { signal: AbortSignal.timeout(periodMs) })).status === 200;
        } catch {
          ok = false; // refused or timed out: not ready
        }
        if (ok) ready.add(b.address);
        else ready.delete(b.address);
      }),
    );
  };
  await probe();
  let probing = false;
  const timer = setInterval(() => {
    if (probing) return;
    probing = true;
    void probe().finally(() => (probing = false));
  }, periodMs);
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const list = backends.filter((b) => ready.has(b.address));
    const target = list[next++ % Math.max(1, list.length)];
    if (!target) return void client.destroy();
    const [host, port] = [
      target.address.slice(0, target.address.lastIndexOf(':')),
      target.address.split(':').pop(),
    ];
    const upstream = net.connect(Number(port), host);
    sockets.add(upstream);
    upstream.once('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${addr.port}`,
    ready: () => [...ready],
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
