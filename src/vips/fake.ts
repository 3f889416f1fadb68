/**
 * An in-memory nftables for the VIP tables (tests): it runs the syncer's scripts command by
 * command as nft runs a transaction's commands in order, refusing what nft would refuse (a rule
 * in a chain that does not exist, a jump to a chain that does not exist, deleting a chain
 * something still jumps to), and answers which backends a VIP reaches. Families are kept
 * apart; counters show `packets` set by the test.
 */
import type { VipNft } from './syncer.js';

type Family = 'ip' | 'ip6';

interface FakeTable {
  chains: Map<string, string[]>;
  /** Map elements: `<addr> . <proto> . <port>` -> chain. */
  elements: Map<string, string>;
}

export class FakeVipNft implements VipNft {
  readonly tables = new Map<Family, FakeTable>();
  scripts: string[] = [];
  /** Applies that fail before the next succeeds. */
  failNext = 0;
  /** What every backend chain's counter shows. */
  packets = 0;

  async apply(script: string): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('nft -f - failed: injected failure');
    }
    // A transaction: work on copies, keep them only when every command passed.
    const next = new Map([...this.tables].map(([f, t]) => [f, { chains: new Map([...t.chains].map(([n, r]) => [n, [...r]])), elements: new Map(t.elements) }]));
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      let m: RegExpExecArray | null;
      if ((m = /^table (ip6?) lashup_vips$/.exec(line)) !== null) {
        if (!next.has(m[1] as Family)) next.set(m[1] as Family, { chains: new Map(), elements: new Map() });
      } else if ((m = /^delete table (ip6?) lashup_vips$/.exec(line)) !== null) next.delete(m[1] as Family);
      else if ((m = /^table (ip6?) lashup_vips \{$/.exec(line)) !== null) {
        const t: FakeTable = { chains: new Map(), elements: new Map() };
        next.set(m[1] as Family, t);
        let chain: string | undefined;
        const elements: string[] = [];
        for (i++; i < lines.length && lines[i] !== '}'; i++) {
          const body = (lines[i] as string).trim();
          const head = /^chain (\S+) \{$/.exec(body);
          if (head !== null) {
            chain = head[1] as string;
            t.chains.set(chain, []);
          } else if (body.startsWith('elements = {')) elements.push(...body.slice(12, -1).split(','));
          else if (body === '}') chain = undefined;
          else if (chain !== undefined && !body.startsWith('type ')) t.chains.get(chain)?.push(body);
        }
        // The map and the rules jump to chains the table defines (anywhere in it).
        for (const e of elements) this.element(t, e.trim());
        for (const rules of t.chains.values()) for (const rule of rules) this.jumps(t, rule);
      } else if ((m = /^add chain (ip6?) lashup_vips (\S+)$/.exec(line)) !== null) this.table(next, m[1]).chains.set(m[2] as string, []);
      else if ((m = /^add rule (ip6?) lashup_vips (\S+) (.+)$/.exec(line)) !== null) {
        const t = this.table(next, m[1]);
        const rules = t.chains.get(m[2] as string);
        if (rules === undefined) throw new Error(`Error: No such file or directory; add rule to chain ${m[2]}`);
        this.jumps(t, m[3] as string);
        rules.push(m[3] as string);
      } else if ((m = /^flush chain (ip6?) lashup_vips (\S+)$/.exec(line)) !== null) {
        const t = this.table(next, m[1]);
        if (!t.chains.has(m[2] as string)) throw new Error(`Error: No such file or directory; flush chain ${m[2]}`);
        t.chains.set(m[2] as string, []);
      } else if ((m = /^delete chain (ip6?) lashup_vips (\S+)$/.exec(line)) !== null) {
        const t = this.table(next, m[1]);
        const name = m[2] as string;
        const used = [...t.chains.values()].some((rules) => rules.some((r) => r.includes(`goto ${name},`) || r.includes(`goto ${name} `) || r.endsWith(`goto ${name}`)));
        if (used || [...t.elements.values()].includes(name)) throw new Error(`Error: Device or resource busy; delete chain ${name}`);
        if (!t.chains.delete(name)) throw new Error(`Error: No such file or directory; delete chain ${name}`);
      } else if ((m = /^add element (ip6?) lashup_vips services \{ (.+) \}$/.exec(line)) !== null) this.element(this.table(next, m[1]), m[2] as string);
      else if ((m = /^delete element (ip6?) lashup_vips services \{ (.+) \}$/.exec(line)) !== null) {
        if (!this.table(next, m[1]).elements.delete((m[2] as string).trim())) throw new Error(`Error: No such file or directory; delete element ${m[2]}`);
      } else if (line.trim() !== '') throw new Error(`the fake does not know the command ${JSON.stringify(line)}`);
    }
    this.tables.clear();
    for (const [f, t] of next) this.tables.set(f, t);
    this.scripts.push(script);
  }

  async listRaw(): Promise<Record<Family, string | undefined>> {
    const out: Record<Family, string | undefined> = { ip: undefined, ip6: undefined };
    for (const [family, t] of this.tables) {
      const lines = [`table ${family} lashup_vips {`, `\tmap services { elements = { ${[...t.elements].map(([k, c]) => `${k} : goto ${c}`).join(', ')} } }`];
      for (const [name, rules] of [...t.chains].sort(([a], [b]) => (a < b ? -1 : 1))) {
        lines.push(`\tchain ${name} {`, ...rules.map((r) => `\t\t${r.replace('counter dnat', `counter packets ${this.packets} bytes ${this.packets * 60} dnat`)}`), '\t}');
      }
      lines.push('}');
      out[family] = lines.join('\n');
    }
    return out;
  }

  /** The backends (`ip:port` as the dnat says) new connections to `address . proto . port` reach; undefined without that VIP. */
  backends(family: Family, vip: string): string[] | undefined {
    const t = this.tables.get(family);
    const chain = t?.elements.get(vip);
    if (t === undefined || chain === undefined) return undefined;
    const targets = [...(t.chains.get(chain)?.join(' ') ?? '').matchAll(/goto (\S+?)(?=[,\s}]|$)/g)].map((x) => x[1] as string);
    return targets.flatMap((c) => (t.chains.get(c) ?? []).map((r) => /dnat to (\S+)/.exec(r)?.[1] ?? '?')).sort();
  }

  private table(tables: Map<Family, FakeTable>, family: string | undefined): FakeTable {
    const t = tables.get(family as Family);
    if (t === undefined) throw new Error(`Error: No such file or directory; table ${family} lashup_vips`);
    return t;
  }

  private element(t: FakeTable, text: string): void {
    const at = text.indexOf(' : goto ');
    const chain = text.slice(at + 8).trim();
    if (!t.chains.has(chain)) throw new Error(`Error: Could not process rule: No such file or directory; element jumps to ${chain}`);
    t.elements.set(text.slice(0, at).trim(), chain);
  }

  private jumps(t: FakeTable, rule: string): void {
    for (const m of rule.matchAll(/goto (\S+?)(?=[,\s}]|$)/g)) if (!t.chains.has(m[1] as string)) throw new Error(`Error: Could not process rule: No such file or directory; goto ${m[1]}`);
  }
}
