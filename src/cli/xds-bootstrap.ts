import { hostname } from 'node:os';
import { parseListenAddress } from '../grpc/address.js';
import { SibylError } from '../util/errors.js';
import { renderBootstrap } from '../xds/bootstrap.js';
import { parseFlags } from './flags.js';

const HELP = `usage: sibyl xds-bootstrap --kind grpc|envoy --server ADDR [flags]

Prints a bootstrap for a data plane that follows sibyl's operator over xDS (ADS on the control API):
gRPC JSON for a proxyless client (GRPC_XDS_BOOTSTRAP names the file; it then dials
xds:///POOL.NAMESPACE), or Envoy YAML (envoy -c FILE).

  --kind grpc|envoy      the data plane
  --server ADDR          the operator's control API, host:port
  --ca FILE              trust this CA (PEM) for the server's certificate
  --insecure             plaintext, no TLS (local runs only; one of --ca and --insecure is needed)
  --token-file FILE      a ServiceAccount token file (a projected token), sent as authorization: Bearer.
                         grpc-go reads it with GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true, over TLS
                         only; Envoy reads it when it starts; grpc-js-xds cannot send one
  --node-id ID           the node id (default: this host's name)
  --fleet NAME           node cluster: Envoys of one fleet share a listener (default sibyl-envoy;
                         proxyless: proxyless)
  --namespace NS         Envoy: route only this namespace's pools (default: every namespace)
  --listen ADDR          Envoy: its gRPC listener (default 0.0.0.0:8080)
  --admin ADDR           Envoy: its admin interface (default 127.0.0.1:9901)`;

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(
    argv,
    {
      kind: { type: 'string' },
      server: { type: 'string' },
      ca: { type: 'string' },
      insecure: { type: 'boolean', default: false },
      'token-file': { type: 'string' },
      'node-id': { type: 'string' },
      fleet: { type: 'string' },
      namespace: { type: 'string' },
      listen: { type: 'string' },
      admin: { type: 'string' },
    },
    HELP,
  );
  if (!v) return 0;
  const kind = v.kind;
  if (kind !== 'grpc' && kind !== 'envoy')
    throw new SibylError('ERR_USAGE', `--kind must be grpc or envoy\n\n${HELP}`);
  if (!v.server) throw new SibylError('ERR_USAGE', `--server is required\n\n${HELP}`);
  parseListenAddress(v.server, '--server');
  if (!!v.ca === v.insecure)
    throw new SibylError('ERR_USAGE', 'give exactly one of --ca FILE (TLS) and --insecure (plaintext)');
  if (kind === 'grpc' && (v.listen || v.admin || v.namespace))
    throw new SibylError('ERR_USAGE', '--listen, --admin and --namespace are for --kind envoy');
  process.stdout.write(
    renderBootstrap(kind, {
      server: v.server,
      ...(v.ca ? { caFile: v.ca } : { insecure: true }),
      ...(v['token-file'] ? { tokenFile: v['token-file'] } : {}),
      nodeId: v['node-id'] ?? hostname(),
      ...(v.fleet ? { fleet: v.fleet } : {}),
      ...(v.namespace ? { namespace: v.namespace } : {}),
      ...(v.listen ? { listen: v.listen } : {}),
      ...(v.admin ? { admin: v.admin } : {}),
    }),
  );
  return 0;
}
