/**
 * TypeScript shapes of the sibyl.demo.v1 messages (proto/sibyl/demo/v1/demo.proto), written by hand for
 * the loader options in proto.ts: camelCase field names, uint64 as JS numbers, bytes as Buffer, and
 * defaults filled in on decoded messages (so `*Out` types have every field).
 */

export interface EchoRequest {
  payload?: Uint8Array;
  responseSize?: number;
  latencyMs?: number;
  failWithCode?: number;
  failMessage?: string;
  message?: string;
  echoMetadata?: Record<string, string>;
}
export type EchoRequestOut = Required<EchoRequest> & { payload: Buffer };

export interface StreamRequest {
  count?: number;
  sleepMs?: number;
  responseSize?: number;
  latencyMs?: number;
  failWithCode?: number;
  failMessage?: string;
  failAfter?: number;
  payload?: Uint8Array;
}
export type StreamRequestOut = Required<StreamRequest> & { payload: Buffer };

export interface EchoResponse {
  payload: Buffer;
  server: string;
  message: string;
  index: number;
  servedMicros: number;
  requestMetadata: Record<string, string>;
}

export interface ClientStreamResponse {
  server: string;
  count: number;
  totalBytes: number;
  messages: string;
}
