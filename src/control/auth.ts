import * as grpc from '@grpc/grpc-js';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';

export interface AuthResult {
  ok: boolean;
  code?: grpc.status;
  message?: string;
  /** system:serviceaccount:NS:NAME when authenticated. */
  username?: string;
}

export type TokenReviewer = (
  token: string,
) => Promise<{ authenticated: boolean; username?: string; error?: string }>;

/** TokenReview against the API server: the token is a ServiceAccount's and still valid. */
export function kubeTokenReviewer(kc: KubeConfig): TokenReviewer {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token) => {
    const r = await api.createTokenReview({ body: { spec: { token } } });
    return {
      authenticated: r.status?.authenticated === true,
      ...(r.status?.user?.username ? { username: r.status.user.username } : {}),
      ...(r.status?.error ? { error: r.status.error } : {}),
    };
  };
}

/**
 * Who may subscribe: routers present their ServiceAccount token as `authorization: Bearer …`; the
 * token is reviewed by the API server and its account must be on the allowed list ("ns/name", or
 * "ns/*" for every account of a namespace). Reviews are cached briefly so a reconnect storm does not
 * become a TokenReview storm; a refusal is never cached longer than that.
 */
export class RouterAuthenticator {
  private readonly cache = new Map<string, { at: number; username?: string; authenticated: boolean }>();

  constructor(
    private readonly review: TokenReviewer,
    private readonly allowed: readonly string[],
    private readonly clock: Clock,
    private readonly cacheMs = 60_000,
  ) {}

  async check(metadata: grpc.Metadata): Promise<AuthResult> {
    const header = metadata.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) {
      return {
        ok: false,
        code: grpc.status.UNAUTHENTICATED,
        message: 'no bearer token: present the router ServiceAccount token in the authorization metadata',
      };
    }
    const token = m[1] as string;
    let r = this.cache.get(token);
    if (!r || this.clock.now() - r.at > this.cacheMs) {
      const res = await this.review(token);
      r = {
        at: this.clock.now(),
        authenticated: res.authenticated,
        ...(res.username ? { username: res.username } : {}),
      };
      this.cache.set(token, r);
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    }
    if (!r.authenticated || !r.username) {
      return {
        ok: false,
        code: grpc.status.UNAUTHENTICATED,
        message: 'the token was not accepted by the API server (TokenReview)',
      };
    }
    if (!this.permits(r.username)) {
      return {
        ok: false,
        code: grpc.status.PERMISSION_DENIED,
        message: `${r.username} is not an allowed router account`,
        username: r.username,
      };
    }
    return { ok: true, username: r.username };
  }

  private permits(username: string): boolean {
    const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!m) return false;
    const [ns, name] = [m[1], m[2]];
    return this.allowed.some((a) => a === `${ns}/${name}` || a === `${ns}/*`);
  }
}

/** What admitStream needs of a server stream (grpc-js duplex and server-streaming calls). */
interface AdmittedCall {
  readonly metadata: grpc.Metadata;
  emit(event: 'error', e: { code: grpc.status; details: string; metadata: grpc.Metadata }): boolean;
}

/**
 * Admits a stream the way each of the operator's streaming APIs does (the control stream, ADS): a
 * standby answers UNAVAILABLE so clients go to the leader, a token that cannot be reviewed now
 * UNAVAILABLE, a refused one its own code. Resolves with the account ('' without `auth`), or with
 * undefined once the call has been failed.
 */
export async function admitStream(
  call: AdmittedCall,
  o: { serving?: () => boolean; auth?: RouterAuthenticator; log: Logger; client: string },
): Promise<string | undefined> {
  const fail = (code: grpc.status, details: string) => {
    call.emit('error', { code, details, metadata: new grpc.Metadata() });
    return undefined;
  };
  if (o.serving && !o.serving())
    return fail(grpc.status.UNAVAILABLE, 'this operator replica is a standby; try the leader');
  if (!o.auth) return '';
  let auth;
  try {
    auth = await o.auth.check(call.metadata);
  } catch (e) {
    o.log.warn({ err: errorMessage(e) }, 'token review failed');
    return fail(grpc.status.UNAVAILABLE, `cannot review the token now: ${errorMessage(e)}`);
  }
  if (!auth.ok) {
    o.log.warn({ account: auth.username, reason: auth.message }, `${o.client} refused`);
    return fail(auth.code ?? grpc.status.UNAUTHENTICATED, auth.message ?? 'refused');
  }
  return auth.username ?? '';
}
