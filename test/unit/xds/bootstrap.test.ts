import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { run } from '../../../src/cli/xds-bootstrap.js';
import { envoyBootstrap, grpcBootstrap } from '../../../src/xds/bootstrap.js';

async function cli(...argv: string[]): Promise<string> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  try {
    await run(argv);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('grpc bootstrap', () => {
  it('plaintext: insecure channel credentials, no token', () => {
    expect(grpcBootstrap({ server: 'op:9443', insecure: true, nodeId: 'n1' })).toEqual({
      xds_servers: [
        { server_uri: 'op:9443', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
      ],
      node: { id: 'n1', cluster: 'proxyless', locality: { region: 'sibyl' } },
    });
  });

  it('TLS with a CA (gRFC A65) and the token as jwt_token_file call credentials (gRFC A97)', () => {
    const b = grpcBootstrap({ server: 'op:9443', caFile: '/ca.crt', tokenFile: '/token', nodeId: 'n1' });
    expect(b.xds_servers).toEqual([
      {
        server_uri: 'op:9443',
        channel_creds: [{ type: 'tls', config: { ca_certificate_file: '/ca.crt' } }],
        call_creds: [{ type: 'jwt_token_file', config: { jwt_token_file: '/token' } }],
        server_features: ['xds_v3'],
      },
    ]);
  });
});

describe('envoy bootstrap', () => {
  it('ADS over Google gRPC with TLS and the token file, LDS and CDS from ADS, the fleet and listener in node', () => {
    const b = envoyBootstrap({
      server: 'op:9443',
      caFile: '/ca.crt',
      tokenFile: '/token',
      nodeId: 'e1',
      fleet: 'edge',
      listen: '0.0.0.0:10000',
      admin: '127.0.0.1:9000',
      namespace: 'shop',
    });
    expect(b).toMatchObject({
      node: {
        id: 'e1',
        cluster: 'edge',
        metadata: {
          'sibyl.dev/listen': '0.0.0.0:10000',
          'sibyl.dev/namespace': 'shop',
          'sibyl.dev/token-file': '/token',
          'sibyl.dev/ca-file': '/ca.crt',
        },
      },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 9000 } } },
      dynamic_resources: {
        ads_config: {
          api_type: 'GRPC',
          transport_api_version: 'V3',
          grpc_services: [
            {
              google_grpc: {
                target_uri: 'op:9443',
                channel_credentials: { ssl_credentials: { root_certs: { filename: '/ca.crt' } } },
                credentials_factory_name: 'envoy.grpc_credentials.file_based_metadata',
                call_credentials: [
                  {
                    from_plugin: {
                      name: 'envoy.grpc_credentials.file_based_metadata',
                      typed_config: { secret_data: { filename: '/token' }, header_prefix: 'Bearer ' },
                    },
                  },
                ],
              },
            },
          ],
        },
        lds_config: { ads: {}, resource_api_version: 'V3' },
        cds_config: { ads: {}, resource_api_version: 'V3' },
      },
    });
  });
});

describe('sibyl xds-bootstrap', () => {
  it('prints gRPC JSON or Envoy YAML', async () => {
    const json = JSON.parse(
      await cli('--kind', 'grpc', '--server', '127.0.0.1:9443', '--insecure', '--node-id', 'x'),
    );
    expect(json.node.id).toBe('x');
    const yaml = parse(
      await cli(
        '--kind',
        'envoy',
        '--server',
        '127.0.0.1:9443',
        '--ca',
        '/c',
        '--listen',
        ':8080',
        '--admin',
        ':9901',
      ),
    );
    expect(yaml.node.metadata['sibyl.dev/listen']).toBe(':8080');
    expect(yaml.admin.address.socket_address).toEqual({ address: '0.0.0.0', port_value: 9901 });
  });

  it('refuses what cannot work, saying why', async () => {
    await expect(cli('--kind', 'istio', '--server', 'a:1', '--insecure')).rejects.toThrow(
      /--kind must be grpc or envoy/,
    );
    await expect(cli('--kind', 'grpc', '--insecure')).rejects.toThrow(/--server is required/);
    await expect(cli('--kind', 'grpc', '--server', 'a:1')).rejects.toThrow(/exactly one of --ca/);
    await expect(cli('--kind', 'grpc', '--server', 'a:1', '--ca', 'c', '--insecure')).rejects.toThrow(
      /exactly one/,
    );
    await expect(cli('--kind', 'grpc', '--server', 'nohost', '--insecure')).rejects.toThrow(
      /--server "nohost"/,
    );
    await expect(cli('--kind', 'grpc', '--server', 'a:1', '--insecure', '--listen', ':1')).rejects.toThrow(
      /for --kind envoy/,
    );
    await expect(cli('--kind', 'envoy', '--server', 'a:1', '--insecure', '--listen', 'x')).rejects.toThrow(
      /--listen "x"/,
    );
  });
});
