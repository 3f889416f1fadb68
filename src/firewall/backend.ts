/**
 * How the syncer reaches nftables: apply a script in one transaction, and list what lashup's
 * tables hold now. The real backend runs the `nft` command (the kernel's nftables netlink
 * protocol has no maintained Node binding; `nft -f` gives one atomic transaction per script and
 * is what operators use to inspect the result).
 */
import { execFile } from 'node:child_process';
import { FirewallError, FirewallErrorCode } from './errors.js';
import type { NftShell } from './shell.js';
import { FIREWALL_FAMILIES, FIREWALL_TABLE, type FirewallFamily } from './ruleset.js';

export interface FirewallBackend {
  /** Runs `script` as one transaction; rejects with a FirewallError (LASHUP_ERR_FIREWALL_APPLY). */
  apply(script: string): Promise<void>;
  /**
   * What lashup's tables hold, normalized so that equal rules list equally (counter values
   * stripped): one text per family, undefined for an absent table.
   */
  list(): Promise<Record<FirewallFamily, string | undefined>>;
  /** Packets counted by each named counter of lashup's tables, both families summed. */
  counters(): Promise<Record<string, number>>;
  /** list() and counters() from one reading of the tables (the syncer's periodic check). */
  read(): Promise<FirewallReading>;
}

export interface FirewallReading {
  listing: Record<FirewallFamily, string | undefined>;
  counters: Record<string, number>;
}

export interface NftCliOptions {
  /** The command and leading arguments; default `['nft']` (tests: `['ip', 'netns', 'exec', NS, 'nft']`). */
  command?: readonly string[];
  /** The table (in each family) this backend lists; default lashup's firewall table (the VIPs have their own). */
  table?: string;
  timeoutMs?: number;
  /**
   * A running `nft -i` to list through (see shell.ts: no fork of the daemon per listing); a
   * listing it cannot give (it died or hung) is taken by a spawned `nft list` instead. Without
   * it every listing is spawned.
   */
  shell?: NftShell;
}

/**
 * Packets of each named counter in a table listing (`counter <name> {` then `packets N bytes M`),
 * summed over the listings given.
 */
export function countersInListing(texts: readonly (string | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const text of texts) {
    if (text === undefined) continue;
    for (const m of text.matchAll(/^\s*counter\s+"?([^\s"{]+)"?\s*\{\s*packets\s+(\d+)\s+bytes\s+\d+/gm)) {
      const name = m[1] as string;
      out[name] = (out[name] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

/** Counter values change with traffic; a listing is compared without them (anonymous and named counters). */
export function normalizeListing(text: string): string {
  return text
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .replace(/packets \d+ bytes \d+/g, 'packets bytes')
    .trim();
}

export class NftCli implements FirewallBackend {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;
  private readonly table: string;
  private readonly shell: NftShell | undefined;

  constructor(options: NftCliOptions = {}) {
    this.command = options.command ?? ['nft'];
    this.table = options.table ?? FIREWALL_TABLE;
    this.shell = options.shell;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  apply(script: string): Promise<void> {
    return this.run(['-f', '-'], script).then(() => undefined);
  }

  async list(): Promise<Record<FirewallFamily, string | undefined>> {
    return (await this.read()).listing;
  }

  async counters(): Promise<Record<string, number>> {
    return (await this.read()).counters;
  }

  /**
   * One `nft list table` per family, and the counters parsed from the same text. It used to be
   * `list tables`, then each table, and again `list tables` and `nft -j list counters` per
   * table: six nft processes every resync (30 s) on every agent, the largest part of an idle
   * agent's CPU after libp2p's. A table that does not exist is nft's "No such file or
   * directory", read as absent.
   */
  async read(): Promise<FirewallReading> {
    const raw = await this.listRaw();
    return {
      listing: { ip: raw.ip === undefined ? undefined : normalizeListing(raw.ip), ip6: raw.ip6 === undefined ? undefined : normalizeListing(raw.ip6) },
      counters: countersInListing([raw.ip, raw.ip6]),
    };
  }

  /** The table as nft lists it, counters included (undefined for a family without it). */
  async listRaw(): Promise<Record<FirewallFamily, string | undefined>> {
    const out: Record<FirewallFamily, string | undefined> = { ip: undefined, ip6: undefined };
    for (const family of FIREWALL_FAMILIES) out[family] = await this.listTable(family);
    return out;
  }

  private async listTable(family: FirewallFamily): Promise<string | undefined> {
    if (this.shell !== undefined) {
      try {
        return await this.shell.list(family, this.table);
      } catch {
        // Counted by the shell (listingFailures); the spawned listing below stands in.
      }
    }
    try {
      return await this.run(['list', 'table', family, this.table]);
    } catch (err) {
      if (err instanceof FirewallError && /No such file or directory/.test(err.message)) return undefined;
      throw err;
    }
  }

  private run(args: string[], input?: string): Promise<string> {
    const [file, ...lead] = this.command as [string, ...string[]];
    return new Promise((resolve, reject) => {
      const child = execFile(file, [...lead, ...args], { timeout: this.timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const text = (stderr || error.message).trim().slice(0, 500);
        reject(new FirewallError(FirewallErrorCode.Apply, `nft ${args.join(' ')} failed: ${text}`, { args, stderr: text }));
      });
      // A command that exits without reading its input (`nft list`, a failing `nft -f`) makes the
      // write fail with EPIPE; unhandled, that error event crashed the daemon (seen in the kernel
      // test). The exit status already tells the outcome, so the stream's error is only absorbed.
      child.stdin?.on('error', () => undefined);
      if (input === undefined) child.stdin?.end();
      else child.stdin?.end(input);
    });
  }
}
