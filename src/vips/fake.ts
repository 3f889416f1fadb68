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
      if (line.trim() === '') continue;
      const full = /^table (ip6?) lashup_vips \{$/.exec(line);
      if (full !== null) {
        i = this.wholeTable(next, full[1] as Family, lines, i + 1);
        continue;
      }
      const command = COMMANDS.find(([re]) => re.test(line));
      if (command === undefined) throw new Error(`the fake does not know the command ${JSON.stringify(line)}`);
      const [re, run] = command;
      const [, family, a = '', b = ''] = re.exec(line) as RegExpExecArray;
      run(this, next, family as Family, a, b);
    }
    this.tables.clear();
    for (const [f, t] of next) this.tables.set(f, t);
    this.scripts.push(script);
  }

  /** Listings asked for. */
  lists = 0;

  /** When set, listings wait for it (a test holds a listing in progress). */
  listGate: Promise<void> | undefined;

  async listRaw(): Promise<Record<Family, string | undefined>> {
    this.lists++;
    await this.listGate;
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

  /** A `table <family> lashup_vips { ... }` body from line `from`; returns the index of its closing line. */
  private wholeTable(tables: Map<Family, FakeTable>, family: Family, lines: string[], from: number): number {
    const t: FakeTable = { chains: new Map(), elements: new Map() };
    tables.set(family, t);
    let chain: string | undefined;
    const elements: string[] = [];
    let i = from;
    for (; i < lines.length && lines[i] !== '}'; i++) {
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
    return i;
  }

  table(tables: Map<Family, FakeTable>, family: string | undefined): FakeTable {
    const t = tables.get(family as Family);
    if (t === undefined) throw new Error(`Error: No such file or directory; table ${family} lashup_vips`);
    return t;
  }

  element(t: FakeTable, text: string): void {
    const at = text.indexOf(' : goto ');
    const chain = text.slice(at + 8).trim();
    if (!t.chains.has(chain)) throw new Error(`Error: Could not process rule: No such file or directory; element jumps to ${chain}`);
    t.elements.set(text.slice(0, at).trim(), chain);
  }

  jumps(t: FakeTable, rule: string): void {
    for (const m of rule.matchAll(/goto (\S+?)(?=[,\s}]|$)/g)) if (!t.chains.has(m[1] as string)) throw new Error(`Error: Could not process rule: No such file or directory; goto ${m[1]}`);
  }
}

type Command = (fake: FakeVipNft, tables: Map<Family, FakeTable>, family: Family, a: string, b: string) => void;

/** The commands of an update script, as nft runs them: in order, refusing dangling references. */
const COMMANDS: [RegExp, Command][] = [
  [
    /^table (ip6?) lashup_vips$/,
    (_f, tables, family) => {
      if (!tables.has(family)) tables.set(family, { chains: new Map(), elements: new Map() });
    },
  ],
  [/^delete table (ip6?) lashup_vips$/, (_f, tables, family) => void tables.delete(family)],
  [/^add chain (ip6?) lashup_vips (\S+)$/, (f, tables, family, chain) => void f.table(tables, family).chains.set(chain, [])],
  [
    /^add rule (ip6?) lashup_vips (\S+) (.+)$/,
    (f, tables, family, chain, rule) => {
      const t = f.table(tables, family);
      const rules = t.chains.get(chain);
      if (rules === undefined) throw new Error(`Error: No such file or directory; add rule to chain ${chain}`);
      f.jumps(t, rule);
      rules.push(rule);
    },
  ],
  [
    /^flush chain (ip6?) lashup_vips (\S+)$/,
    (f, tables, family, chain) => {
      const t = f.table(tables, family);
      if (!t.chains.has(chain)) throw new Error(`Error: No such file or directory; flush chain ${chain}`);
      t.chains.set(chain, []);
    },
  ],
  [
    /^delete chain (ip6?) lashup_vips (\S+)$/,
    (f, tables, family, name) => {
      const t = f.table(tables, family);
      const used = [...t.chains.values()].some((rules) => rules.some((r) => new RegExp(`goto ${name}(?=[,\\s}]|$)`).test(r)));
      if (used || [...t.elements.values()].includes(name)) throw new Error(`Error: Device or resource busy; delete chain ${name}`);
      if (!t.chains.delete(name)) throw new Error(`Error: No such file or directory; delete chain ${name}`);
    },
  ],
  [/^add element (ip6?) lashup_vips services \{ (.+) \}$/, (f, tables, family, element) => f.element(f.table(tables, family), element)],
  [
    /^delete element (ip6?) lashup_vips services \{ (.+) \}$/,
    (f, tables, family, key) => {
      if (!f.table(tables, family).elements.delete(key.trim())) throw new Error(`Error: No such file or directory; delete element ${key}`);
    },
  ],
];
