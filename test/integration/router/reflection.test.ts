import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { demoPool, startBackends, startRouter } from '../../support/grpc.js';

interface ListReply {
  list_services_response?: { service: Array<{ name: string }> };
}

// `sibyl backend` serves gRPC server reflection (so grpcurl and ghz need no .proto), also through the router.
it('lists the Demo service over server reflection, directly and through a pool matching it', async () => {
  const [backend] = await startBackends(1, { reflection: true });
  const router = await startRouter([
    {
      ...demoPool([backend!]),
      match: { services: ['sibyl.demo.v1.Demo', 'grpc.reflection.v1.ServerReflection'] },
    },
  ]);
  const root = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', {
    includeDirs: [root],
    keepCase: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const list = (address: string) =>
    new Promise<string[]>((resolve, reject) => {
      const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
      const call = (
        client as unknown as {
          ServerReflectionInfo(): grpc.ClientDuplexStream<
            object,
            { list_services_response?: { service: Array<{ name: string }> } }
          >;
        }
      ).ServerReflectionInfo();
      call.on('data', (m: ListReply) => {
        resolve(m.list_services_response?.service.map((svc: { name: string }) => svc.name) ?? []);
        call.end();
        client.close();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
  try {
    expect(await list(backend!.address)).toContain('sibyl.demo.v1.Demo');
    expect(await list(router.address)).toContain('sibyl.demo.v1.Demo');
  } finally {
    await router.close();
    await backend!.stop(100);
  }
});
