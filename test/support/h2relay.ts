import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { FRAME, FrameReader, PREFACE } from './h2frames.js';

/**
 * A TCP relay between an HTTP/2 client (the router) and a server (a backend) that reads the frames going
 * both ways to keep the server's send credit (RFC 9113 §6.9): each stream's window and the connection's,
 * as the client grants them (SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE) and the server's DATA uses
 * them. A stream whose credit (its own or the connection's) is spent cannot carry another byte until the
 * client reads on: a test waits for that to know the client holds the server back, instead of waiting
 * a while and hoping it has. The relay itself buffers no more than the sockets do (pipe backpressure).
 */
export class H2Relay {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly connections: FlowState[] = [];
  /** Frames the client sent, by type name (DATA, HEADERS, RST_STREAM, …), over every connection. */
  readonly clientFrames = new Map<string, number>();

  private constructor(private readonly target: number) {
    this.server = createServer((down) => {
      const up = connect(this.target, '127.0.0.1');
      const state = new FlowState();
      this.connections.push(state);
      this.sockets.add(down).add(up);
      const fromClient = new FrameReader(PREFACE.length, (type, flags, stream, payload) => {
        const name = FRAME_NAMES[type] ?? `type${type}`;
        this.clientFrames.set(name, (this.clientFrames.get(name) ?? 0) + 1);
        state.fromClient(type, flags, stream, payload);
      });
      const fromServer = new FrameReader(0, (type, flags, stream, payload) =>
        state.fromServer(type, flags, stream, payload),
      );
      down.on('data', (c: Buffer) => fromClient.feed(c));
      up.on('data', (c: Buffer) => fromServer.feed(c));
      down.pipe(up).pipe(down);
      const close = () => (down.destroy(), up.destroy());
      down.on('error', close).on('close', close);
      up.on('error', close).on('close', close);
    });
  }

  /** A relay on a free loopback port to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<H2Relay> {
    const r = new H2Relay(targetPort);
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Streams on which the server has sent DATA and that are still open, with their credit left. */
  streams(): Array<{ stream: number; bytes: number; credit: number }> {
    const out = [];
    for (const c of this.connections) {
      for (const [stream, s] of c.streams) {
        if (s.closed || s.bytes === 0) continue;
        out.push({ stream, bytes: s.bytes, credit: Math.min(s.window, c.connectionWindow) });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

const FRAME_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FRAME).map(([k, v]) => [v, k]));
const DEFAULT_WINDOW = 65_535;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;

interface StreamFlow {
  window: number;
  bytes: number;
  closed: boolean;
}

/** One connection's credit for the server's DATA, from the frames seen so far. */
class FlowState {
  readonly streams = new Map<number, StreamFlow>();
  connectionWindow = DEFAULT_WINDOW;
  private initialWindow = DEFAULT_WINDOW;

  private stream(id: number): StreamFlow {
    let s = this.streams.get(id);
    if (!s) this.streams.set(id, (s = { window: this.initialWindow, bytes: 0, closed: false }));
    return s;
  }

  fromClient(type: number, flags: number, stream: number, payload: Buffer): void {
    if (type === FRAME.SETTINGS && !(flags & FLAG_ACK)) {
      for (let i = 0; i + 6 <= payload.length; i += 6) {
        if (payload.readUInt16BE(i) !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
        // A new initial window moves every open stream's window by the difference (§6.9.2).
        const next = payload.readUInt32BE(i + 2);
        for (const s of this.streams.values()) s.window += next - this.initialWindow;
        this.initialWindow = next;
      }
    } else if (type === FRAME.WINDOW_UPDATE && payload.length >= 4) {
      const inc = payload.readUInt32BE(0) & 0x7fffffff;
      if (stream === 0) this.connectionWindow += inc;
      else this.stream(stream).window += inc;
    } else if (type === FRAME.HEADERS && stream !== 0) {
      this.stream(stream);
    } else if (type === FRAME.RST_STREAM) {
      this.stream(stream).closed = true;
    }
  }

  fromServer(type: number, flags: number, stream: number, payload: Buffer): void {
    if (type === FRAME.DATA) {
      // The whole payload counts, padding included (§6.9.1).
      const s = this.stream(stream);
      s.window -= payload.length;
      s.bytes += payload.length;
      this.connectionWindow -= payload.length;
      if (flags & FLAG_END_STREAM) s.closed = true;
    } else if ((type === FRAME.HEADERS && flags & FLAG_END_STREAM) || type === FRAME.RST_STREAM) {
      this.stream(stream).closed = true;
    }
  }
}
