import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * The xDS protos, from the Envoy API, xds, googleapis and protoc-gen-validate trees that
 * @grpc/grpc-js-xds ships under deps/ (no Node control-plane library is maintained; go-control-plane
 * is the reference). Loaded once with protobufjs, keeping the protos' snake_case field names so
 * resources read like Envoy's documentation; loading takes about 200 ms.
 */
const require = createRequire(import.meta.url);
const DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(DEPS, d)),
  // google/protobuf/descriptor.proto and friends, which protobufjs does not build in.
  dirname(require.resolve('protobufjs/package.json')),
];

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/adaptive_concurrency/v3/adaptive_concurrency.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'xds/type/v3/typed_struct.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/config/grpc_credential/v3/file_based_metadata.proto',
];

let root: protobuf.Root | undefined;

export function xdsRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of INCLUDE) if (existsSync(join(dir, target))) return join(dir, target);
    return target; // google/protobuf/any.proto and the like: built into protobufjs
  };
  r.loadSync(FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

/** A google.protobuf.Any as protobufjs and @grpc/proto-loader take it. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** Encodes `message` (snake_case fields, as in the proto) as `typeName`, wrapped in an Any. */
export function packAny(typeName: string, message: object): AnyMessage {
  const type = xdsRoot().lookupType(typeName);
  check(type, message, typeName);
  return {
    type_url: `type.googleapis.com/${typeName}`,
    value: Buffer.from(type.encode(type.fromObject(message)).finish()),
  };
}

/**
 * protobufjs's fromObject drops fields it does not know and turns an unknown enum name into 0, so a
 * misspelt field would vanish silently; this refuses both, naming the path.
 */
function check(type: protobuf.Type, obj: object, path: string): void {
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    const at = `${path}.${key}`;
    if (!field) throw new Error(`${at}: ${type.fullName.slice(1)} has no field ${key}`);
    if (value === undefined || value === null) continue;
    const resolved = field.resolve().resolvedType;
    const items: unknown[] = field.repeated
      ? (value as unknown[])
      : field.map
        ? Object.values(value as object)
        : [value];
    for (const item of items) {
      if (resolved instanceof protobuf.Enum && typeof item === 'string' && !(item in resolved.values))
        throw new Error(`${at}: ${item} is not a ${resolved.fullName.slice(1)}`);
      if (resolved instanceof protobuf.Type && typeof item === 'object' && !Buffer.isBuffer(item))
        check(resolved, item as object, at);
    }
  }
}

/** Decodes an Any back to a plain object (tests and diagnostics). */
export function unpackAny(any: AnyMessage): Record<string, unknown> {
  const type = xdsRoot().lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  return type.toObject(type.decode(any.value), { longs: Number, enums: String, defaults: false });
}

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true };

function codec<T>(typeName: string) {
  const type = xdsRoot().lookupType(typeName);
  return {
    serialize: (m: T) => Buffer.from(type.encode(type.fromObject(m as object)).finish()),
    deserialize: (b: Buffer) => type.toObject(type.decode(b), TO_OBJECT) as T,
  };
}

/**
 * AggregatedDiscoveryService with state-of-the-world streams only: grpc-go and grpc-js-xds speak
 * nothing else, and Envoy falls back to it. DeltaAggregatedResources is left out, so grpc-js answers
 * it UNIMPLEMENTED.
 */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  const req = codec<DiscoveryRequest>('envoy.service.discovery.v3.DiscoveryRequest');
  const res = codec<DiscoveryResponse>('envoy.service.discovery.v3.DiscoveryResponse');
  return {
    StreamAggregatedResources: {
      path: `/${ADS}/StreamAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
    },
  };
}

/**
 * google.protobuf.Struct's Value, one `kind` member set. protobufjs builds the well-known types in with
 * camelCase field names whatever keepCase says, so these are camelCase unlike every other field here.
 */
export interface StructValue {
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, StructValue> };
  listValue?: { values?: StructValue[] };
}

export interface XdsNode {
  id: string;
  cluster: string;
  user_agent_name: string;
  user_agent_version?: string;
  metadata?: { fields?: Record<string, StructValue> };
}

export interface DiscoveryRequest {
  version_info: string;
  node?: XdsNode | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code: number; message: string } | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

/** A Struct's string field, or '' (node metadata written by `sibyl xds-bootstrap`). */
export function structString(s: XdsNode['metadata'], key: string): string {
  return s?.fields?.[key]?.stringValue ?? '';
}

/** A plain JSON object as a google.protobuf.Struct (typed_struct values, metadata). */
export function toStruct(obj: Record<string, unknown>): { fields: Record<string, StructValue> } {
  const value = (v: unknown): StructValue => {
    if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, value(v)])) };
}
