/**
 * An in-memory nftables for tests: keeps lashup's tables as the last script made them (the
 * script's table bodies stand for the listing) and lets a test flush the ruleset, edit a table
 * or make the next applies fail.
 */
import type { FirewallBackend, FirewallReading } from './backend.js';
import { FirewallError, FirewallErrorCode } from './errors.js';
import { FIREWALL_TABLE, type FirewallFamily } from './ruleset.js';

export class FakeNft implements FirewallBackend {
  readonly tables = new Map<FirewallFamily, string>();
  applies = 0;
  /** Applies that fail before this many more calls succeed. */
  failNext = 0;

  apply(script: string): Promise<void> {
    this.applies++;
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new FirewallError(FirewallErrorCode.Apply, 'nft -f - failed: injected failure'));
    }
    // Scripts from applyScript: "delete table <f> lashup" then optionally "table <f> lashup {" ... "}".
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      const del = /^delete table (ip6?) (\S+)$/.exec(line);
      if (del !== null && del[2] === FIREWALL_TABLE) this.tables.delete(del[1] as FirewallFamily);
      const open = /^table (ip6?) (\S+) \{$/.exec(line);
      if (open !== null && open[2] === FIREWALL_TABLE) {
        const body: string[] = [];
        while (++i < lines.length && lines[i] !== '}') body.push((lines[i] as string).trim());
        this.tables.set(open[1] as FirewallFamily, body.join('\n'));
      }
    }
    return Promise.resolve();
  }

  list(): Promise<Record<FirewallFamily, string | undefined>> {
    return Promise.resolve({ ip: this.tables.get('ip'), ip6: this.tables.get('ip6') });
  }

  /** Packets per named counter, as a test sets them (counters of absent tables read as none). */
  readonly counterValues = new Map<string, number>();

  counters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, packets] of this.counterValues) if ([...this.tables.values()].some((body) => body.includes(`counter ${name} {}`))) out[name] = packets;
    return Promise.resolve(out);
  }

  async read(): Promise<FirewallReading> {
    return { listing: await this.list(), counters: await this.counters() };
  }

  /** `nft flush ruleset`. */
  flush(): void {
    this.tables.clear();
  }
}
