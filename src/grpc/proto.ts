import { fileURLToPath } from 'node:url';
import type * as protoLoader from '@grpc/proto-loader';

/** proto/ at the package root; the same relative path from src/grpc and dist/grpc. */
const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

/**
 * Loader options for every sibyl proto: camelCase fields (keepCase false), 64-bit integers as JS
 * numbers (every such field stays far below 2^53), bytes as Buffer, and defaults filled in so decoded
 * messages have every field.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};
