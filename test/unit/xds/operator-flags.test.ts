import { run } from '../../../src/cli/operator.js';

describe('sibyl operator --xds-allow-unauthenticated', () => {
  it('is for local plaintext runs: refused without --control-insecure', async () => {
    await expect(
      run([
        '--control-addr',
        '127.0.0.1:0',
        '--control-cert',
        'tls.crt',
        '--control-key',
        'tls.key',
        '--allowed-routers',
        'ns/router',
        '--xds-allow-unauthenticated',
      ]),
    ).rejects.toThrow(/--xds-allow-unauthenticated is for local plaintext runs: it needs --control-insecure/);
  });
});
