import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PolicyName } from '../../api/backendpool.js';
import { renderBootstrap } from '../../xds/bootstrap.js';
import { resourceName } from '../../xds/types.js';
import { PoolWeights } from '../../xds/weights.js';
import { calibrate, poolInput, startAds, type Ads } from './ads.js';
import { EnvoyProcess } from './envoy.js';
import { LoadDriver } from './load-driver.js';
import { startNginx } from './nginx.js';
import {
  poll,
  startBenchBackend,
  startRouterWithPools,
  startSibyl,
  stop,
  track,
  type Child,
} from './processes.js';
import type { XdsCalibration } from './proxy-result.js';

/**
 * One pool of `sibyl bench proxy`: its backends and every proxy and client in front of them, started
 * before its runs and stopped after. sibyl's ADS (in this process) programs the Envoy and the
 * proxyless clients from the weights src/xds makes of each backend's calibrated service time.
 */

const HERE = fileURLToPath(import.meta.url);
const RELAY = path.join(path.dirname(HERE), `relay${path.extname(HERE)}`);

export interface PoolSetup {
  /** The pool's key on the ADS, "namespace/name". */
  key: string;
  /** Each backend's service time, ms. */
  latencies: number[];
  /** Each backend's slots (`sibyl backend --concurrency`); 0: unlimited. */
  slots: number;
  policy: string;
  relay: boolean;
  nginx?: { bin: string; workers: number };
  envoy?: { bin: string; baseId: number };
  /** The proxyless clients to start: grpc-go (the sibyl-xds-client binary) and grpc-js. */
  proxyless?: { go?: string; js: boolean };
  /** The calls/s the pool is told it receives, from its estimated capacity. */
  offered?: (capacity: number) => number;
}

export type DriverName = 'goDirect' | 'goXds' | 'jsDirect' | 'jsXds';

export interface Pool {
  backends: string[];
  router: string;
  nginx?: string;
  relay?: string;
  envoy?: string;
  drivers: Partial<Record<DriverName, LoadDriver>>;
  xds?: XdsCalibration;
}

/** What a pool has started, stopped together. */
class Started {
  readonly children: Child[] = [];
  readonly drivers: LoadDriver[] = [];
  ads?: Ads;

  /** Refuses figures measured while one of the processes had stopped. */
  checkAlive(): void {
    const all = [...this.children, ...this.drivers.map((d) => d.child)];
    const dead = all.filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
    if (dead.length === 0) return;
    const which = dead.map((c) => `${c.name} (${c.proc.signalCode ?? `exit ${c.proc.exitCode}`})`);
    throw new Error(`stopped during the runs, so the figures are void: ${which.join(', ')}`);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.close()));
    await Promise.all(this.children.map(stop));
    await this.ads?.stop();
  }
}

/** Calibrates the backends, sets the pool on a new ADS and says how it was programmed. */
async function program(
  s: PoolSetup,
  started: Started,
  backends: string[],
): Promise<{ ads: Ads; xds: XdsCalibration }> {
  const serviceMs = await calibrate(backends);
  const concurrency = s.slots > 0 ? { concurrency: s.slots } : {};
  const endpoint = (_a: string, i: number) => ({
    predictedServiceMs: serviceMs[i] as number,
    ...concurrency,
  });
  const spec = { balancing: { policy: s.policy as PolicyName } };
  const capacity = PoolWeights.usable(poolInput(s.key, backends, spec, endpoint).endpoints);
  const offered = s.offered?.(capacity);
  const ads = await startAds();
  started.ads = ads;
  const input = poolInput(s.key, backends, spec, endpoint);
  ads.xds.setPool(s.key, offered !== undefined ? { ...input, offeredCallsPerSec: offered } : input);
  const view = ads.xds.pool(s.key);
  const xds: XdsCalibration = {
    capacityCallsPerSec: capacity,
    ...(offered !== undefined ? { offeredCallsPerSec: offered } : {}),
    stockPolicy: view?.stockPolicy ?? 'unknown',
    endpoints: backends.map((address, i) => ({
      address,
      configuredMs: s.latencies[i] as number,
      serviceMs: serviceMs[i] as number,
      ...concurrency,
      weight: view?.weights.get(address) ?? 1,
    })),
  };
  return { ads, xds };
}

/** An Envoy bootstrapped at the ADS, once it routes with every endpoint at the weight sibyl pushed. */
async function startEnvoy(
  env: NonNullable<PoolSetup['envoy']>,
  dir: string,
  ads: Ads,
  xds: XdsCalibration,
  started: Started,
): Promise<string> {
  const envoy = await EnvoyProcess.create(
    'envoy',
    env.baseId,
    { server: ads.address, insecure: true, nodeId: 'bench-envoy' },
    { bin: env.bin, dir },
  );
  started.children.push(track('envoy', envoy.start()));
  await envoy.ready();
  await poll(async () => {
    const clusters = await envoy.adminGet('/clusters');
    return xds.endpoints.every((e) => clusters.includes(`${e.address}::weight::${e.weight}`));
  }, 'envoy to take the weights sibyl pushed');
  return envoy.listen;
}

async function startDrivers(
  s: PoolSetup,
  ads: Ads,
  direct: string,
  started: Started,
): Promise<Partial<Record<DriverName, LoadDriver>>> {
  const target = `xds:///${resourceName(s.key)}`;
  const bootstrap = (id: string) =>
    renderBootstrap('grpc', { server: ads.address, insecure: true, nodeId: id });
  const out: Partial<Record<DriverName, LoadDriver>> = {};
  const add = async (name: DriverName, d: Promise<LoadDriver>) => {
    out[name] = await d;
    started.drivers.push(out[name]);
  };
  const go = s.proxyless?.go;
  if (go) {
    await add('goDirect', LoadDriver.go('grpc-go direct', go, direct));
    await add('goXds', LoadDriver.go('grpc-go xds', go, target, bootstrap('bench-go')));
  }
  if (s.proxyless?.js) {
    await add('jsDirect', LoadDriver.js('grpc-js direct', direct));
    await add('jsXds', LoadDriver.js('grpc-js xds', target, bootstrap('bench-js')));
  }
  return out;
}

/** Starts the pool, runs `f` on it, stops everything (also when `f` fails). */
export async function withPool<T>(s: PoolSetup, dir: string, f: (p: Pool) => Promise<T>): Promise<T> {
  const started = new Started();
  try {
    const slots = ['--concurrency', String(s.slots)];
    const backends = await Promise.all(
      s.latencies.map((ms, i) => startBenchBackend(`backend ${i}`, ms, ['--name', `b${i}`, ...slots])),
    );
    started.children.push(...backends.map((b) => b.child));
    const addresses = backends.map((b) => b.listening);
    const config = path.join(dir, `routes-${s.key.replace('/', '-')}.yaml`);
    const pool = {
      name: 'bench',
      match: { services: ['sibyl.demo.v1.Demo'] },
      endpoints: addresses.map((address) => ({ address })),
      balancing: { policy: s.policy },
    };
    const router = await startRouterWithPools('router', config, [pool]);
    started.children.push(router.child);
    const p: Pool = { backends: addresses, router: router.listening, drivers: {} };
    if (s.relay) {
      const relay = await startSibyl(
        'relay',
        addresses.flatMap((a) => ['--upstream', a]),
        RELAY,
      );
      started.children.push(relay.child);
      p.relay = relay.listening;
    }
    if (s.nginx) {
      const n = await startNginx(s.nginx.bin, dir, addresses, s.nginx.workers);
      started.children.push(n.child);
      p.nginx = n.listening;
    }
    if (s.envoy || s.proxyless) {
      const { ads, xds } = await program(s, started, addresses);
      p.xds = xds;
      if (s.envoy) p.envoy = await startEnvoy(s.envoy, dir, ads, xds, started);
      p.drivers = await startDrivers(s, ads, addresses[0] as string, started);
    }
    const result = await f(p);
    // Something else on the machine stopping a backend or proxy mid-run would make every figure after it
    // meaningless: refuse the results rather than print them.
    started.checkAlive();
    return result;
  } finally {
    await started.stopAll();
  }
}
