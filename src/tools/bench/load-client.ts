import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpcXds from '@grpc/grpc-js-xds';
import { registerPredictiveBalancer } from '../../client/index.js';
import { echoClient } from './echo-client.js';
import { openLoop, type CallLog } from './open-loop.js';

/**
 * A grpc-js load client for `sibyl bench proxy`, in a process of its own: an open-loop load of
 * Demo/Echo at a fixed rate, to one address or, proxyless, to xds:///NAME through @grpc/grpc-js-xds
 * with sibyl's policy registered (registerPredictiveBalancer: the cluster's policy list names
 * sibyl.PredictiveLb first, and this client has it). It speaks sibyl-xds-client's protocol
 * (test/xds/go-client), so the bench drives both alike: JSON lines on stdin,
 *
 *   {"op":"load","rate":R,"seconds":S} -> {"op":"load","sent":N,"seconds":T,"latencyUs":[...],"codes":[...]}
 *
 * and {"op":"started"} once the channel is set up. The xDS bootstrap is GRPC_XDS_BOOTSTRAP_CONFIG's.
 * It exits when stdin closes. A benchmark tool only.
 *
 * Run: node dist/tools/bench/load-client.js --target ADDRESS|xds:///NAME
 */
interface Command {
  op: string;
  rate?: number;
  seconds?: number;
}

const print = (v: object) => process.stdout.write(`${JSON.stringify(v)}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { target: { type: 'string' }, timeout: { type: 'string', default: '5000' } },
  });
  const target = values.target;
  if (!target) throw new Error('usage: load-client --target ADDRESS|xds:///NAME [--timeout MS]');
  if (target.startsWith('xds:')) {
    grpcXds.register();
    registerPredictiveBalancer();
  }
  const client = echoClient(target);
  const deadlineMs = Number(values.timeout);
  print({ op: 'started', target });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    let cmd: Command;
    try {
      cmd = JSON.parse(line) as Command;
    } catch (e) {
      print({ op: 'error', error: e instanceof Error ? e.message : String(e) });
      continue;
    }
    if (cmd.op !== 'load' || !(Number(cmd.rate) > 0) || !(Number(cmd.seconds) > 0)) {
      print({ op: 'error', error: `unknown op or bad load: ${line}` });
      continue;
    }
    const log: CallLog = { latencyMs: [], codes: [] };
    const t0 = performance.now();
    await openLoop(client, { rps: Number(cmd.rate), seconds: Number(cmd.seconds), deadlineMs }, log);
    print({
      op: 'load',
      sent: log.codes.length,
      seconds: (performance.now() - t0) / 1000,
      latencyUs: log.latencyMs.map((ms) => Math.round(ms * 1000)),
      codes: log.codes,
    });
  }
  client.close();
  // grpc-js-xds's ADS stream would keep the process alive after the channel closes.
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(`load-client: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
