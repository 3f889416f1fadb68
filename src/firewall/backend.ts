/**
 * How the syncer reaches nftables: apply a script in one transaction, and list what lashup's
 * tables hold now. The real backend runs the `nft` command (the kernel's nftables netlink
 * protocol has no maintained Node binding; `nft -f` gives one atomic transaction per script and
 * is what operators use to inspect the result).
 */
import { execFile } from 'node:child_process';
import { FirewallError, FirewallErrorCode } from './errors.js';
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
}

export interface NftCliOptions {
  /** The command and leading arguments; default `['nft']` (tests: `['ip', 'netns', 'exec', NS, 'nft']`). */
  command?: readonly string[];
  /** The table (in each family) this backend lists; default lashup's firewall table (the VIPs have their own). */
  table?: string;
  timeoutMs?: number;
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

  constructor(options: NftCliOptions = {}) {
    this.command = options.command ?? ['nft'];
    this.table = options.table ?? FIREWALL_TABLE;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  apply(script: string): Promise<void> {
    return this.run(['-f', '-'], script).then(() => undefined);
  }

  async list(): Promise<Record<FirewallFamily, string | undefined>> {
    const raw = await this.listRaw();
    return { ip: raw.ip === undefined ? undefined : normalizeListing(raw.ip), ip6: raw.ip6 === undefined ? undefined : normalizeListing(raw.ip6) };
  }

  /** The table as nft lists it, counters included (undefined for a family without it). */
  async listRaw(): Promise<Record<FirewallFamily, string | undefined>> {
    const out: Record<FirewallFamily, string | undefined> = { ip: undefined, ip6: undefined };
    const tables = await this.run(['list', 'tables']);
    for (const family of FIREWALL_FAMILIES) {
      if (!tables.split('\n').some((l) => l.trim() === `table ${family} ${this.table}`)) continue;
      out[family] = await this.run(['list', 'table', family, this.table]);
    }
    return out;
  }

  async counters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const tables = await this.run(['list', 'tables']);
    for (const family of FIREWALL_FAMILIES) {
      if (!tables.split('\n').some((l) => l.trim() === `table ${family} ${this.table}`)) continue;
      let parsed: { nftables?: { counter?: { name?: unknown; packets?: unknown } }[] };
      try {
        parsed = JSON.parse(await this.run(['-j', 'list', 'counters', 'table', family, this.table])) as typeof parsed;
      } catch (err) {
        if (err instanceof FirewallError) throw err;
        throw new FirewallError(FirewallErrorCode.Apply, `nft -j list counters gave unreadable JSON: ${(err as Error).message}`);
      }
      for (const item of parsed.nftables ?? []) {
        const c = item.counter;
        if (c === undefined || typeof c.name !== 'string' || typeof c.packets !== 'number') continue;
        out[c.name] = (out[c.name] ?? 0) + c.packets;
      }
    }
    return out;
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
