/**
 * The overlay configuration as the cluster sees it: published by the leading master at
 * `overlay-config`, read by every node. What arrives from the network is validated like the
 * operator's own file; an invalid one (a forged write, a bug in another version) is logged,
 * counted by error code and ignored, and readers keep the last valid configuration.
 */
import { plainEquals, type PlainValue } from '../crdt/index.js';
import { IpamError, validateOverlayConfig, type OverlayConfig } from '../ipam/index.js';
import type { KvStore, KvValue } from '../kv/index.js';
import type { Logger } from '../log/index.js';
import { OVERLAY_CONFIG_FIELD, OVERLAY_CONFIG_KEY } from './keys.js';
import { writeIfChanged } from './write.js';

/**
 * The configuration held at `overlay-config`: undefined when absent; throws an IpamError
 * (LASHUP_ERR_IPAM_INVALID_CONFIG, naming the field) when it is not a valid configuration.
 */
export function decodeOverlayConfig(value: KvValue | undefined): OverlayConfig | undefined {
  const raw = value?.[OVERLAY_CONFIG_FIELD];
  if (raw === undefined) return undefined;
  // validateOverlayConfig checks every field the overlay uses, with a JSON path from this base.
  validateOverlayConfig(raw as OverlayConfig, `${OVERLAY_CONFIG_KEY}.${OVERLAY_CONFIG_FIELD}`);
  return raw as OverlayConfig;
}

/** Writes the committed configuration (the leading master); true when it changed. */
export function publishOverlayConfig(kv: KvStore, config: OverlayConfig): boolean {
  return writeIfChanged(kv, OVERLAY_CONFIG_KEY, OVERLAY_CONFIG_FIELD, config as unknown as PlainValue);
}

export interface OverlayConfigViewStats {
  /** Valid configurations taken from the store that differed from the one in use. */
  updates: number;
  /** Configurations ignored, by error code. */
  problems: Record<string, number>;
}

export interface OverlayConfigViewOptions {
  kv: KvStore;
  /** The node's own configuration: in use until the masters' copy is in the store. */
  fallback: OverlayConfig;
  logger?: Logger;
}

/**
 * The configuration in use on this node, following the store. Listeners get the current one at
 * once (replay) and every valid change after it.
 */
export class OverlayConfigView {
  readonly stats: OverlayConfigViewStats = { updates: 0, problems: {} };
  private config: OverlayConfig;
  private fromStore = false;
  private readonly listeners = new Set<(config: OverlayConfig) => void>();
  private readonly unsubscribe: () => void;

  constructor(private readonly options: OverlayConfigViewOptions) {
    this.config = options.fallback;
    this.unsubscribe = options.kv.subscribe(
      (key) => key === OVERLAY_CONFIG_KEY,
      (change) => this.take(change.new),
    );
  }

  /** The configuration in use. */
  get current(): OverlayConfig {
    return this.config;
  }

  /** Whether the masters' configuration has arrived (otherwise `current` is the local file's). */
  get published(): boolean {
    return this.fromStore;
  }

  /** Calls `listener` with the current configuration now and with each change; returns an unsubscribe. */
  subscribe(listener: (config: OverlayConfig) => void): () => void {
    this.listeners.add(listener);
    listener(this.config);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  private take(value: KvValue | undefined): void {
    let config: OverlayConfig | undefined;
    try {
      config = decodeOverlayConfig(value);
    } catch (err) {
      const code = err instanceof IpamError ? err.code : 'LASHUP_ERR_INTERNAL';
      this.stats.problems[code] = (this.stats.problems[code] ?? 0) + 1;
      this.options.logger?.error({ code, err: err instanceof Error ? err.message : String(err) }, 'the published overlay configuration is not valid; keeping the last valid one');
      return;
    }
    // Removed (or never written): keep what is in use; an agent does not tear down its overlay
    // because a key vanished.
    if (config === undefined) return;
    this.fromStore = true;
    if (plainEquals(config as unknown as PlainValue, this.config as unknown as PlainValue)) return;
    this.config = config;
    this.stats.updates++;
    for (const listener of this.listeners) listener(config);
  }
}
