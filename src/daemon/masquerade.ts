/**
 * Masquerading of overlay-sourced traffic that leaves the overlay (containers reaching the
 * underlay or the internet), in an nftables table lashup owns: `ip lashup` and `ip6 lashup`.
 * The whole table is replaced in one `nft -f` transaction (create-if-missing, delete, recreate),
 * so there is never a moment without the rule and never a second copy of it; nothing outside
 * these tables is touched.
 */
import { execFile } from 'node:child_process';
import type { OverlayConfig } from '../ipam/index.js';

export const MASQUERADE_TABLE = 'lashup';

/** The nft script for `overlay` (pure). Empty tables when a family has no network. */
export function masqueradeRuleset(overlay: OverlayConfig): string {
  const nets = overlay.networks.filter((n) => n.enabled !== false);
  const v4 = nets.flatMap((n) => (n.subnet === undefined ? [] : [n.subnet]));
  const v6 = nets.flatMap((n) => (n.subnet6 === undefined ? [] : [n.subnet6]));
  const lines: string[] = [];
  for (const [family, sources, vtep] of [
    ['ip', v4, overlay.vtepSubnet],
    ['ip6', v6, overlay.vtepSubnet6],
  ] as const) {
    lines.push(`table ${family} ${MASQUERADE_TABLE} {}`, `delete table ${family} ${MASQUERADE_TABLE}`, `table ${family} ${MASQUERADE_TABLE} {`);
    lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
    if (sources.length > 0) {
      const inside = [...sources, ...(vtep === undefined ? [] : [vtep])];
      lines.push(`    ${family} saddr { ${sources.join(', ')} } ${family} daddr != { ${inside.join(', ')} } counter masquerade`);
    }
    lines.push('  }', '}');
  }
  return `${lines.join('\n')}\n`;
}

/** Replaces lashup's tables; resolves with nft's error text, or undefined on success. */
export function applyMasquerade(overlay: OverlayConfig, timeoutMs = 10_000): Promise<string | undefined> {
  const script = masqueradeRuleset(overlay);
  return new Promise((resolve) => {
    const child = execFile('nft', ['-f', '-'], { timeout: timeoutMs, encoding: 'utf8' }, (error, _stdout, stderr) => {
      resolve(error === null ? undefined : (stderr || error.message).trim());
    });
    child.stdin?.end(script);
  });
}

/** Removes lashup's tables (on `leave`). */
export function removeMasquerade(timeoutMs = 10_000): Promise<string | undefined> {
  const script = [`table ip ${MASQUERADE_TABLE} {}`, `delete table ip ${MASQUERADE_TABLE}`, `table ip6 ${MASQUERADE_TABLE} {}`, `delete table ip6 ${MASQUERADE_TABLE}`].join('\n');
  return new Promise((resolve) => {
    const child = execFile('nft', ['-f', '-'], { timeout: timeoutMs, encoding: 'utf8' }, (error, _stdout, stderr) => resolve(error === null ? undefined : (stderr || error.message).trim()));
    child.stdin?.end(`${script}\n`);
  });
}
