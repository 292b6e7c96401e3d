import type { Dialect } from '../lib/dialect.ts';
import type { Peer } from '../lib/peers.ts';
import type { RunningServer } from '../lib/proc.ts';
import type { RunningRedis } from '../lib/redis.ts';
import type { Target } from '../lib/session.ts';

/** What a scenario gets: the server it measures (already started, pinned) and its sizes. */
export interface ScenarioContext {
  peer: Peer;
  /** The server callers connect to (a cluster's first node). */
  server: RunningServer;
  target: Target;
  /**
   * Where callees connect: the same server, or in a cluster another node, so that every
   * message a pair exchanges crosses from one process to the other.
   */
  callee: Target;
  /** Every process of a cluster (one entry for a single server). */
  servers: RunningServer[];
  /** A cluster's redis-server. */
  redis?: RunningRedis;
  /** Processes whose CPU counts as the server's: the server, or the nodes and Redis. */
  serverPids: number[];
  dialect: Dialect;
  /** Unique per scenario run, so names never collide with a previous run's. */
  tag: string;
  quick: boolean;
  root: string;
}

/** One run's figures: numbers only (plus notes), so runs can be combined into medians. */
export interface ScenarioResult {
  figures: Record<string, number>;
  notes?: string[];
}
