import type { Hub } from './signaling/hub.ts';

/**
 * GET /metrics in the Prometheus text exposition format (version 0.0.4), written by hand:
 * a few dozen lines against a client library's registry, and the counters already live
 * where the outcomes are decided (`hub.stats`, the upgrade route). Everything here is read
 * at scrape time; nothing is computed per message.
 */

/** Why an upgrade was refused before a socket existed. */
export const UPGRADE_REFUSALS = ['origin', 'token', 'server_full', 'too_many_from_ip'] as const;
export type UpgradeRefusal = (typeof UPGRADE_REFUSALS)[number];

/** The process's memory, in bytes, as the runtime reports it. */
export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

export interface MetricsSource {
  hub: Hub;
  version: string;
  /** The runtime serving, e.g. `{ name: 'bun', version: '1.4.4' }`. */
  runtime: { name: string; version: string };
  rejected: Readonly<Record<UpgradeRefusal, number>>;
  /** When the server started (ms since the epoch). */
  startedAt: number;
  /** Given by the adapter: the core does not ask the runtime. */
  memory?: () => MemoryUsage;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
type Samples = number | Array<[Labels, number]>;

const escapeLabel = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
};
/** One sample per key of `counts`, labelled `label="key"`. */
const each = (label: string, counts: Readonly<Record<string, number>>): Array<[Labels, number]> =>
  Object.entries(counts).map(([key, n]) => [{ [label]: key }, n]);

export function renderMetrics({ hub, version, runtime, rejected, startedAt, memory }: MetricsSource, now = Date.now()): string {
  let out = '';
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Samples) => {
    out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    if (typeof samples === 'number') out += `${name} ${samples}\n`;
    else for (const [labels, value] of samples) out += `${name}${labelText(labels)} ${value}\n`;
  };
  const { stats, cluster } = hub;
  const census = hub.census();

  const info: Labels = { version, runtime: runtime.name, runtime_version: runtime.version };
  if (cluster !== undefined) info.node = cluster.node;
  metric('signalbox_build_info', 'gauge', 'Version, runtime and (in a cluster) node id of this process; always 1.', [[info, 1]]);
  metric('signalbox_uptime_seconds', 'gauge', 'Seconds since the server started.', Math.floor((now - startedAt) / 1000));
  if (memory !== undefined) {
    const m = memory();
    metric('process_resident_memory_bytes', 'gauge', 'Resident set size of the process.', m.rss);
    metric('signalbox_heap_used_bytes', 'gauge', "Bytes in use on the JavaScript engine's heap.", m.heapUsed);
    metric('signalbox_heap_total_bytes', 'gauge', "Size of the JavaScript engine's heap.", m.heapTotal);
  }

  metric('signalbox_connections', 'gauge', 'Open WebSocket connections.', census.connections);
  metric('signalbox_connections_anonymous', 'gauge', 'Open connections that have not logged in yet.', census.anonymous);
  metric('signalbox_users', 'gauge', 'Logged-in users held on this node, those in their grace period included.', census.sessions);
  metric('signalbox_sessions_in_grace', 'gauge', 'Resumable sessions whose connection dropped, waiting for their client.', census.resumable);
  metric('signalbox_calls', 'gauge', 'Calls (offered or answered) of users on this node; a call between two nodes counts 0.5 on each.', census.calls);
  metric('signalbox_rooms', 'gauge', 'Rooms with a member on this node.', census.rooms);

  metric('signalbox_logins_total', 'counter', 'Successful logins (resumes not included).', stats.logins);
  metric('signalbox_login_failures_total', 'counter', 'Refused logins, by reason.', each('reason', stats.loginFailures));
  metric('signalbox_resumes_total', 'counter', 'Sessions resumed with their token.', stats.resumes);
  metric('signalbox_messages_relayed_total', 'counter', 'Messages relayed to users on this node, by type.', each('type', stats.relayed));
  metric('signalbox_errors_total', 'counter', 'Errors decided on this node, by code.', each('code', stats.errors));
  metric('signalbox_upgrades_rejected_total', 'counter', 'WebSocket upgrades refused before a connection existed, by reason.', each('reason', rejected));
  metric('signalbox_received_bytes_total', 'counter', 'Frames received from clients (text frames by UTF-16 length: their bytes when ASCII).', stats.bytesIn);
  metric('signalbox_sent_bytes_total', 'counter', 'Frames sent to clients, replies included (a room event counted once per room).', stats.bytesOut);

  if (cluster !== undefined) {
    metric('signalbox_redis_up', 'gauge', 'Whether this node is connected to Redis and subscribed (1) or not (0).', [[{ node: cluster.node }, cluster.ready ? 1 : 0]]);
  }
  return out;
}
