import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Scheduler } from '../../../src/sim/index.js';
import { DEFAULT_OVERLAY_CONFIG, type OverlayConfig } from '../../../src/ipam/index.js';
import { FirewallSyncer, NftCli, applyScript, countersInListing, firewallRuleset, normalizeListing, removeScript } from '../../../src/firewall/index.js';
import { FakeNft } from '../../../src/testing/index.js';

const overlay = (): OverlayConfig => structuredClone(DEFAULT_OVERLAY_CONFIG) as OverlayConfig;

t.test('the ruleset masquerades overlay sources leaving the overlay, per family', async (t) => {
  const script = applyScript(firewallRuleset(overlay(), { masquerade: true }));
  t.match(script, /^table ip lashup \{\}\ndelete table ip lashup\ntable ip lashup \{/);
  t.match(script, /ip saddr \{ 9\.0\.0\.0\/8 \} ip daddr != \{ 9\.0\.0\.0\/8, 44\.128\.0\.0\/20 \} counter masquerade/);
  t.match(script, /ip6 saddr \{ fd01:b::\/64 \} ip6 daddr != \{ fd01:b::\/64, fd01:a::\/64 \} counter masquerade/);
  const v4only = applyScript(firewallRuleset({ ...overlay(), networks: [{ name: 'dcos', subnet: '9.0.0.0/8', prefix: 24 }] }, { masquerade: true }));
  t.notMatch(v4only, /ip6 saddr/, 'no IPv6 rule without an IPv6 network');
  const disabled = applyScript(
    firewallRuleset(
      {
        ...overlay(),
        networks: [
          { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24, enabled: false },
          { name: 'b', subnet: '10.0.0.0/8', prefix: 24 },
        ],
      },
      { masquerade: true },
    ),
  );
  t.match(disabled, /ip saddr \{ 10\.0\.0\.0\/8 \}/, 'disabled networks are left out');
  const noMasquerade = applyScript(firewallRuleset(overlay(), { masquerade: false }));
  t.notMatch(noMasquerade, /masquerade/, 'masquerade off: no masquerade');
  t.match(noMasquerade, /chain forward/, 'but the isolation rules stay');
  t.equal(removeScript(), 'table ip lashup {}\ndelete table ip lashup\ntable ip6 lashup {}\ndelete table ip6 lashup\n');
  t.equal(normalizeListing('  counter packets 12 bytes 3400 masquerade\n'), 'counter masquerade');
});

function setup(resyncIntervalMs = 10_000) {
  const scheduler = new Scheduler({ epochMs: 1_700_000_000_000 });
  const nft = new FakeNft();
  const syncer = new FirewallSyncer({ backend: nft, clock: scheduler.clock(), resyncIntervalMs });
  /** Lets the syncer's promise chains settle between virtual-time steps. */
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  const run = async (ms: number): Promise<void> => {
    await settle();
    for (let elapsed = 0; elapsed < ms; elapsed += 100) {
      scheduler.runFor(100);
      await settle();
    }
  };
  return { scheduler, nft, syncer, run, settle };
}

t.test('applied at start and on change, then left alone while unchanged', async (t) => {
  const { nft, syncer, run } = setup();
  syncer.setDesired(firewallRuleset(overlay(), { masquerade: true }));
  await run(0);
  t.equal(nft.applies, 0, 'nothing applied before start');
  syncer.start();
  await run(0);
  t.equal(nft.applies, 1);
  t.match(nft.tables.get('ip'), /9\.0\.0\.0\/8/);
  t.equal(syncer.stats.converged, true);
  syncer.setDesired(firewallRuleset(overlay(), { masquerade: true }));
  await run(0);
  t.equal(nft.applies, 1, 'the same ruleset is not applied again');
  const changed = overlay();
  changed.networks.push({ name: 'dev', subnet: '10.64.0.0/16', prefix: 24 });
  syncer.setDesired(firewallRuleset(changed, { masquerade: true }));
  await run(0);
  t.equal(nft.applies, 2, 'a changed overlay is applied at once');
  t.match(nft.tables.get('ip'), /ip saddr \{ 9\.0\.0\.0\/8, 10\.64\.0\.0\/16 \}/);
  await run(35_000);
  t.equal(nft.applies, 2, 'resyncs that find the tables as applied change nothing');
  t.equal(syncer.stats.resyncs, 3);
  t.equal(syncer.stats.drift, 0);
  await syncer.stop();
});

t.test('put back within the resync interval after a flush or an edit', async (t) => {
  const { nft, syncer, run } = setup(10_000);
  syncer.setDesired(firewallRuleset(overlay(), { masquerade: true }));
  syncer.start();
  await run(0);
  nft.flush();
  await run(9_900);
  t.equal(nft.tables.size, 0, 'not yet: the resync has not come');
  await run(200);
  t.equal(syncer.stats.drift, 1);
  t.match(nft.tables.get('ip'), /masquerade/, 'restored');
  nft.tables.set('ip6', 'chain postrouting { }');
  await run(10_000);
  t.equal(syncer.stats.drift, 2, 'an edited table counts as drift too');
  t.match(nft.tables.get('ip6'), /fd01:b::\/64/);
  await syncer.stop();
});

t.test('a failed apply is retried with backoff and counted', async (t) => {
  const { nft, syncer, run } = setup(60_000);
  nft.failNext = 3;
  syncer.setDesired(firewallRuleset(overlay(), { masquerade: true }));
  syncer.start();
  await run(0);
  t.equal(syncer.stats.applyFailures, 1);
  t.equal(syncer.stats.converged, false);
  await run(1_000);
  t.equal(syncer.stats.applyFailures, 2, 'retried after 1 s');
  await run(1_900);
  t.equal(syncer.stats.applyFailures, 2, 'then after 2 s');
  await run(200);
  t.equal(syncer.stats.applyFailures, 3);
  await run(4_000);
  t.equal(syncer.stats.applies, 1, 'then after 4 s, applied');
  t.equal(syncer.stats.converged, true);
  await syncer.stop();
});

t.test('leaving removes the tables and stops syncing', async (t) => {
  const { nft, syncer, run } = setup(10_000);
  syncer.setDesired(firewallRuleset(overlay(), { masquerade: true }));
  syncer.start();
  await run(0);
  await syncer.remove();
  t.equal(nft.tables.size, 0);
  t.equal(syncer.stats.removals, 1);
  const applies = nft.applies;
  await run(30_000);
  t.equal(nft.applies, applies, 'no resync after removal');
  syncer.setDesired(firewallRuleset({ ...overlay(), mtu: 1400, networks: [{ name: 'x', subnet: '10.0.0.0/8', prefix: 24 }] }, { masquerade: true }));
  await run(1_000);
  t.equal(nft.applies, applies, 'a stopped syncer applies nothing');
});

t.test('NftCli: runs the command, lists and normalizes, and survives a command that does not read its input', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in for nft: each call is logged; `list table ip lashup` lists a table with a named
  // counter, `list table ip6 lashup` is nft's answer for a missing table, `-f -` saves its input.
  const fake = join(dir, 'nft');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      `echo "$*" >> ${join(dir, 'calls')}`,
      'case "$*" in',
      '  "list table ip lashup") printf "table ip lashup {\\n\\tcounter drop_0_1 {\\n\\t\\tpackets 7 bytes 420\\n\\t}\\n\\tchain f {\\n\\t\\tcounter packets 12 bytes 3400 masquerade\\n\\t}\\n}\\n" ;;',
      '  "list table ip6 lashup") printf "Error: No such file or directory\\nlist table ip6 lashup\\n               ^^^^^^\\n" >&2; exit 1 ;;',
      `  "-f -") cat > ${join(dir, 'applied')} ;;`,
      '  *) echo "Error: Operation not permitted: $*" >&2; exit 1 ;;',
      'esac',
    ].join('\n'),
  );
  chmodSync(fake, 0o755);
  const nft = new NftCli({ command: [fake] });
  const reading = await nft.read();
  t.same(
    reading.listing,
    { ip: 'table ip lashup {\n\tcounter drop_0_1 {\n\t\tpackets bytes\n\t}\n\tchain f {\n\t\tcounter masquerade\n\t}\n}', ip6: undefined },
    'counter values stripped; a missing table is absent',
  );
  t.same(reading.counters, { drop_0_1: 7 }, 'named counters read from the same listing');
  t.equal(readFileSync(join(dir, 'calls'), 'utf8'), 'list table ip lashup\nlist table ip6 lashup\n', 'one nft run per family, nothing else');
  t.same(await nft.counters(), { drop_0_1: 7 });
  await nft.apply('table ip lashup {}\n');
  t.equal(readFileSync(join(dir, 'applied'), 'utf8'), 'table ip lashup {}\n', 'the script went to nft -f - on stdin');
  await t.rejects(
    new NftCli({ command: [fake], table: 'other' }).list(),
    { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /nft list table ip other failed: Error: Operation not permitted/ },
    'other failures are errors, not absent tables',
  );

  // A command that exits at once without reading a large script: the write fails with EPIPE,
  // which once escaped as an unhandled error event and killed the daemon.
  const quitter = new NftCli({ command: ['sh', '-c', 'echo "Error: syntax error" >&2; exit 1', 'nft'] });
  await t.rejects(quitter.apply('x'.repeat(4 << 20)), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /nft -f - failed: Error: syntax error/ });
  await t.rejects(new NftCli({ command: [join(dir, 'missing')] }).list(), { code: 'LASHUP_ERR_FIREWALL_APPLY', message: /nft list table ip lashup failed/ }, 'a missing nft is a typed error');
});

t.test('named counters are read from listings, both families summed', async (t) => {
  const v4 = 'table ip lashup {\n\tcounter drop_0_1 {\n\t\tpackets 3 bytes 180\n\t}\n\tcounter "drop_hosts_2" {\n\t\tpackets 0 bytes 0\n\t}\n}';
  const v6 = 'table ip6 lashup {\n\tcounter drop_0_1 {\n\t\tpackets 4 bytes 320\n\t}\n\tchain f {\n\t\tcounter packets 9 bytes 9 drop\n\t}\n}';
  t.same(countersInListing([v4, v6]), { drop_0_1: 7, drop_hosts_2: 0 }, 'anonymous counters are not named ones');
  t.same(countersInListing([undefined, undefined]), {});
});

/** Three networks: dev allows ops in, prod is isolated and closed to hosts and the outside. */
const policyOverlay = (): OverlayConfig => ({
  ...overlay(),
  networks: [
    { name: 'dev', subnet: '10.1.0.0/16', prefix: 24, subnet6: 'fd10:1::/64', prefix6: 80, allowFrom: ['ops'] },
    { name: 'prod', subnet: '10.2.0.0/16', prefix: 24, allowHosts: false, allowOutbound: false },
    { name: 'ops', subnet: '10.3.0.0/16', prefix: 24 },
  ],
});

t.test('isolation: one rule per network pair, from the configuration alone', async (t) => {
  const ruleset = firewallRuleset(policyOverlay(), { masquerade: true });
  const ip = ruleset.tables.find((x) => x.family === 'ip')?.body.join('\n') ?? '';
  const lines = (re: RegExp): number => ip.split('\n').filter((l) => re.test(l)).length;
  t.match(ip, /ct state established,related accept/, 'replies of allowed connections pass');
  t.match(ip, /ip daddr 10\.1\.0\.0\/16 ip saddr 10\.1\.0\.0\/16 accept/, 'a network reaches itself');
  t.match(ip, /ip daddr 10\.1\.0\.0\/16 ip saddr 10\.3\.0\.0\/16 accept/, 'ops may open connections into dev');
  t.match(ip, /ip daddr 10\.3\.0\.0\/16 ip saddr 10\.1\.0\.0\/16 counter name drop_0_2 drop/, 'but dev not into ops (allowFrom is one way)');
  t.match(ip, /ip daddr 10\.1\.0\.0\/16 ip saddr 10\.2\.0\.0\/16 counter name drop_1_0 drop/, 'prod not into dev');
  t.match(ip, /chain forward \{[^}]*ip daddr 10\.2\.0\.0\/16 counter name drop_hosts_1 drop/, 'prod closed to other hosts');
  t.match(ip, /chain output \{[^}]*ip daddr 10\.2\.0\.0\/16 counter name drop_hosts_1 drop/, 'and to its own agent');
  t.match(ip, /ip saddr 10\.2\.0\.0\/16 ip daddr != \{ 10\.1\.0\.0\/16, 10\.2\.0\.0\/16, 10\.3\.0\.0\/16, 44\.128\.0\.0\/20 \} counter name drop_1_outside drop/, 'prod may not reach the outside');
  t.equal(lines(/^counter drop_/), 7, 'named counters declared: 5 refused pairs, hosts into prod, prod outside');
  t.same(
    ruleset.counters.map((c) => `${c.from}>${c.to}`).sort(),
    ['dev>ops', 'dev>prod', 'hosts>prod', 'ops>prod', 'prod>dev', 'prod>ops', 'prod>outside'].sort(),
    'every refused pair has its counter',
  );
  const ip6 = ruleset.tables.find((x) => x.family === 'ip6')?.body.join('\n') ?? '';
  t.match(ip6, /ip6 daddr fd10:1::\/64 ip6 saddr fd10:1::\/64 accept/, 'IPv6 alike');
  t.notMatch(ip6, /10\.2/, 'no IPv4 ranges in the IPv6 table');
  const forward = ip.slice(ip.indexOf('chain forward'), ip.indexOf('chain output'));
  t.ok(forward.indexOf('ct state established') < forward.indexOf('drop'), 'replies are accepted before any drop');
});

t.test('drop counters are read back per (from, to) pair', async (t) => {
  const { nft, syncer, run } = setup();
  syncer.setDesired(firewallRuleset(policyOverlay(), { masquerade: true }));
  syncer.start();
  await run(0);
  nft.counterValues.set('drop_1_0', 3);
  nft.counterValues.set('drop_hosts_1', 2);
  const dropped = await syncer.readCounters();
  t.equal(dropped['prod']?.['dev'], 3, 'prod -> dev');
  t.equal(dropped['hosts']?.['prod'], 2, 'hosts -> prod');
  t.equal(dropped['dev']?.['ops'], 0, 'a refused pair with no drops reads 0');
  nft.counterValues.set('drop_1_0', 5);
  await run(10_100);
  t.equal(syncer.stats.dropped['prod']?.['dev'], 5, 'a resync reads them too');
  t.equal(normalizeListing('counter drop_1_0 {\n  packets 5 bytes 420\n}'), 'counter drop_1_0 {\n  packets bytes\n}', 'named counter values do not count as drift');
  await syncer.stop();
});
