/**
 * The CNI network configuration lashup writes per overlay network: the reference bridge plugin
 * on `m-<network>` (gateway on, no masquerade - lashup's nftables table does that - hairpin, the
 * overlay MTU) chained with lashup-ipam. Written atomically, and only when it changes.
 *
 * The file does not list the agent's range: podman 4.3 reads `ipam.ranges` only for host-local
 * (`podman network inspect` showed no subnet with them listed). `lashup allocations` shows the
 * range. It names the resolver (the bridge gateway, when the DNS server listens there), which
 * changes only with the lease.
 *
 * Level-triggered (`ConflistKeeper`): a runtime may delete the file (`podman network rm`), after
 * which it refused the network ("network not found") until the next lease event restored it.
 * The keeper restores a missing or altered file within seconds and touches nothing else in the
 * directory (runtimes keep their own files there, podman's `cni.lock` among them).
 */
import { existsSync, mkdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { NodeFs, writeFileAtomic } from '../storage/index.js';
import type { Logger } from '../log/index.js';
import { bridgeNames } from '../vxlan/index.js';

/**
 * `nameservers`: the container's resolvers (the daemon's DNS server on the bridge gateway), put
 * in the bridge plugin's own `dns`: the bridge plugin of Debian 12 (1.1.1) replaces the IPAM
 * result's `dns` with its configuration's, so naming them in lashup-ipam's result alone was lost
 * (found by the DNS kernel test). Newer bridges keep either.
 */
export function conflist(network: string, mtu: number, socketPath: string, nameservers: readonly string[] = []): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: network,
    plugins: [
      {
        type: 'bridge',
        bridge: bridgeNames(network).mesos,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        mtu,
        ...(nameservers.length > 0 ? { dns: { nameservers: [...nameservers] } } : {}),
        ipam: { type: 'lashup-ipam', network, socketPath },
      },
    ],
  };
}

const conflistText = (network: string, mtu: number, socketPath: string, nameservers: readonly string[] = []): string => `${JSON.stringify(conflist(network, mtu, socketPath, nameservers), null, 2)}\n`;

/** Writes `path` with `text` if its content differs (atomically); returns whether it wrote. */
function writeIfDifferent(path: string, text: string): boolean {
  try {
    if (readFileSync(path, 'utf8') === text) return false;
  } catch {
    // Missing or unreadable: write it.
  }
  // Runtimes read conflists (as root, and tools as anyone): world-readable, like /etc/cni/net.d.
  writeFileAtomic(new NodeFs(), path, text, { mode: 0o644, dirMode: 0o755 });
  return true;
}

/** Writes `<dir>/<network>.conflist` if its content differs; returns whether it wrote. */
export function writeConflist(dir: string, network: string, mtu: number, socketPath: string): boolean {
  return writeIfDifferent(join(dir, `${network}.conflist`), conflistText(network, mtu, socketPath));
}

export interface ConflistKeeperOptions {
  /** Directory of the conflists (cni.confDir). */
  dir: string;
  socketPath: string;
  mtu: number;
  /** Backstop check interval in ms, for changes the directory watch missed. Default 5,000. */
  checkIntervalMs?: number;
  logger?: Logger;
}

export interface ConflistStats {
  /** Files written: first writes, changes of the lease, and restorations. */
  writes: number;
  /** Writes that restored a file someone else removed or changed. */
  restored: number;
  /** Writes that failed (read-only directory, full disk). */
  failures: number;
}

export class ConflistKeeper {
  readonly stats: ConflistStats = { writes: 0, restored: 0, failures: 0 };
  private desired = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private scheduled = false;
  private stopped = false;
  private failureLogged = false;

  constructor(private readonly options: ConflistKeeperOptions) {}

  /** The networks to keep a conflist for, with the resolvers their containers get (`resolvers`, default none). */
  setNetworks(networks: readonly string[], resolvers: (network: string) => readonly string[] = () => []): void {
    const next = new Map<string, string>();
    for (const network of networks) next.set(network, conflistText(network, this.options.mtu, this.options.socketPath, resolvers(network)));
    this.desired = next;
    this.check(false);
  }

  start(): void {
    this.timer = setInterval(() => this.check(true), this.options.checkIntervalMs ?? 5000);
    this.timer.unref();
    this.watch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Watches the directory for removals and changes; re-armed by `check` when the directory itself went away. */
  private watch(): void {
    if (this.stopped || this.watcher !== undefined) return;
    try {
      mkdirSync(this.options.dir, { recursive: true });
      this.watcher = watch(this.options.dir, (_event, file) => {
        if (file !== null && !this.desired.has(String(file).replace(/\.conflist$/, ''))) return;
        // Coalesce the burst of events a rename makes.
        if (this.scheduled) return;
        this.scheduled = true;
        setTimeout(() => {
          this.scheduled = false;
          this.check(true);
        }, 50).unref();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }

  /** Writes every desired file that is missing or differs. */
  check(restoring: boolean): void {
    if (this.stopped && restoring) return;
    for (const [network, text] of this.desired) {
      const path = join(this.options.dir, `${network}.conflist`);
      const existed = existsSync(path);
      try {
        if (!writeIfDifferent(path, text)) continue;
        this.failureLogged = false;
        this.stats.writes++;
        if (restoring) {
          this.stats.restored++;
          this.options.logger?.warn({ network, path, existed }, existed ? 'CNI configuration was changed by someone else; restored' : 'CNI configuration was removed by someone else; restored');
        } else this.options.logger?.info({ network, dir: this.options.dir }, 'CNI configuration written');
      } catch (err) {
        this.stats.failures++;
        if (!this.failureLogged) {
          this.failureLogged = true;
          this.options.logger?.error({ err: (err as Error).message, network, path }, 'cannot write the CNI configuration');
        }
      }
    }
    if (!this.stopped) this.watch();
  }
}
