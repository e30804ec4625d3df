import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';

/** Agents kept at most (one per TLS identity; a rotated client certificate makes a new one). */
const MAX_AGENTS = 4;

/**
 * A KubeConfig whose API requests reuse their connections. @kubernetes/client-node 1.4 makes a new
 * https.Agent for every request (KubeConfig.applySecurityAuthentication → createAgent), so each status
 * write and event opened a TLS connection of its own: at 500 pools, TLS set-up under the client's
 * fetch was 15% of the operator's CPU samples (bench/results/scale.md). Here the agent the library
 * made is swapped for a keep-alive one with the same TLS options, one per distinct set of options
 * (client-go keeps one http.Transport per TLS config the same way: transport/cache.go).
 * Credentials that are headers (tokens, exec plugins) are still applied on every request.
 */
export class KeepAliveKubeConfig extends KubeConfig {
  private readonly agents = new Map<string, http.Agent>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getAgent();
    // A proxy agent (cluster.proxyUrl) is not an https.Agent we can reproduce: leave it as made.
    if (made?.constructor !== https.Agent && made?.constructor !== http.Agent) return;
    const options = (made as https.Agent).options;
    const key = createHash('sha256')
      .update(made.constructor === https.Agent ? 'https' : 'http')
      .update(JSON.stringify(tlsIdentity(options)))
      .digest('hex');
    let agent = this.agents.get(key);
    if (!agent) {
      const keepAlive = { ...options, keepAlive: true, maxSockets: 32, maxFreeSockets: 8 };
      agent = made.constructor === https.Agent ? new https.Agent(keepAlive) : new http.Agent(keepAlive);
      if (this.agents.size >= MAX_AGENTS) {
        const [oldest, old] = this.agents.entries().next().value as [string, http.Agent];
        old.destroy();
        this.agents.delete(oldest);
      }
      this.agents.set(key, agent);
    }
    made.destroy();
    context.setAgent(agent);
  }

  /** Closes the kept connections (for a clean exit). */
  closeConnections(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

function tlsIdentity(o: https.AgentOptions): unknown[] {
  const text = (v: unknown) => (v === undefined ? null : Buffer.isBuffer(v) ? v.toString('base64') : v);
  return [o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername].map((v) =>
    Array.isArray(v) ? v.map(text) : text(v),
  );
}

/** --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster ServiceAccount. */
export function loadKubeConfig(file?: string): KeepAliveKubeConfig {
  const kc = new KeepAliveKubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}
