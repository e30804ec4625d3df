import type { CommandModule } from './command.js';

export interface Command {
  summary: string;
  /** Absent while the command is not built yet: `sibyl` then says so instead of failing obscurely. */
  load?: () => Promise<CommandModule>;
}

export const commands: Record<string, Command> = {
  operator: {
    summary: 'reconcile BackendPools and CacheTiers, serve the control API',
    load: () => import('./operator.js'),
  },
  router: {
    summary: 'the gRPC proxy: route every call with the routing tables',
    load: () => import('./router.js'),
  },
  backend: {
    summary: 'a gRPC test backend (sibyl.demo.v1.Demo) with set latency, errors and ORCA',
    load: () => import('./backend.js'),
  },
  train: { summary: 'train the latency model', load: () => import('./train.js') },
  bench: { summary: 'benchmarks: sim | proxy | cache | scale', load: () => import('./bench.js') },
  demo: { summary: 'the whole system on one machine (use `make demo`)', load: () => import('./demo.js') },
  'xds-bootstrap': {
    summary: 'print a bootstrap for Envoy or a proxyless gRPC client (xDS from the operator)',
    load: () => import('./xds-bootstrap.js'),
  },
  crds: { summary: 'write the CustomResourceDefinitions (--out DIR)', load: () => import('./crds.js') },
};
