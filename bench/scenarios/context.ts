import type { Dialect } from '../lib/dialect.ts';
import type { Peer } from '../lib/peers.ts';
import type { RunningServer } from '../lib/proc.ts';
import type { Target } from '../lib/session.ts';

/** What a scenario gets: the server it measures (already started, pinned) and its sizes. */
export interface ScenarioContext {
  peer: Peer;
  server: RunningServer;
  target: Target;
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
