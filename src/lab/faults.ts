/**
 * The injected faults of one host as an nftables script (pure; the runner feeds it to `nft -f`
 * inside the host's namespace). One table of the lab's own, replaced whole in one transaction:
 * adding, deleting and re-adding a table in a single script is atomic, so a host never passes
 * through a state with half of a partition's rules.
 *
 * Partitions drop at both ends (output of the sender, input of the receiver); loss drops a
 * share of the sender's output with `numgen random`, so each direction of a lossy link loses
 * its share independently. Nothing here touches lashup's own tables.
 */
import type { World } from './world.js';

/** The lab's table in every host namespace. */
export const FAULT_TABLE = 'lashup_lab_faults';

export function faultScript(world: World, host: string, ipOf: (name: string) => string): string {
  const output = world.outputRules(host).map((r) => (r.drop ? `    ip daddr ${ipOf(r.to)} drop` : `    ip daddr ${ipOf(r.to)} numgen random mod 100 < ${r.lossPercent} drop`));
  const input = world.inputDrops(host).map((from) => `    ip saddr ${ipOf(from)} drop`);
  return [
    `table inet ${FAULT_TABLE}`,
    `delete table inet ${FAULT_TABLE}`,
    `table inet ${FAULT_TABLE} {`,
    '  chain output {',
    '    type filter hook output priority -20; policy accept;',
    ...output,
    '  }',
    '  chain input {',
    '    type filter hook input priority -20; policy accept;',
    ...input,
    '  }',
    '}',
    '',
  ].join('\n');
}
