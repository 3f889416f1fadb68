import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, configDefaults, configReference, parseConfig, parseConfigText, stripLineComments } from '../../../src/daemon/index.js';
import { DEFAULT_OVERLAY_CONFIG } from '../../../src/ipam/index.js';

const KEY = `${'A'.repeat(43)}=`;
const minimal = { name: 'agent-1', role: 'agent', underlayIp: '192.0.2.10', masters: ['m1', 'm2', 'm3'], cluster: { keys: [KEY] } };

function problems(value: unknown): { path: string; expected: string }[] {
  try {
    parseConfig(value);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => ({ path: p.path, expected: p.expected }));
    throw err;
  }
  return [];
}

t.test('a minimal config gets every default', async (t) => {
  const c = parseConfig(minimal);
  t.equal(c.dataDir, '/var/lib/lashup');
  t.same(c.listen, { bindHost: '0.0.0.0', udpPort: 62501, libp2pPort: 62502 });
  t.same(c.api, { socketPath: '/run/lashup/api.sock', socketGroup: '', tcp: true, host: '127.0.0.1', port: 62080, tokenFile: '', ui: true });
  t.same(c.dataplane, { enabled: true, resyncIntervalMs: 60_000, masquerade: true, firewallResyncIntervalMs: 30_000 });
  t.equal(c.membership.profile, 'lan');
  t.equal(c.overlay.vtepName, 'vtep1024');
  t.equal(c.overlay.networks.length, 2);
  t.equal(c.cluster.label, 'lashup');
  t.same(c.seeds, []);
  t.notOk('advertiseHost' in c.listen, 'optional settings without default stay absent');
  t.match(configDefaults(), { api: { port: 62080 }, log: { level: 'info' } });
});

t.test('every problem is reported at once, with path, value and what is valid', async (t) => {
  let error: ConfigError | undefined;
  try {
    parseConfig({ ...minimal, role: 'boss', api: { port: 70_000, hots: '::1' }, extra: 1, cluster: { keys: ['short'] }, masters: [], underlayIp: '10.0.0.300' });
  } catch (err) {
    error = err as ConfigError;
  }
  t.ok(error instanceof ConfigError);
  t.equal(error?.code, 'LASHUP_ERR_CONFIG_INVALID');
  t.same(error?.problems.map((p) => p.path).sort(), ['$.api.hots', '$.api.port', '$.cluster.keys[0]', '$.extra', '$.masters', '$.role', '$.underlayIp']);
  t.match(error?.message, /\$\.role = "boss": expected one of "master", "agent"/);
  t.match(error?.message, /\$\.api\.port = 70000: expected an integer from 1 to 65535/);
  t.match(error?.message, /\$\.extra = 1: expected no such setting; valid here: name, role/);
  t.match(error?.message, /\$\.api\.hots = "::1": expected no such setting; valid here: socketPath, socketGroup, tcp, host, port, tokenFile/);
});

t.test('required settings, nested overrides and the overlay are checked', async (t) => {
  t.same(
    problems({}).map((p) => p.path),
    ['$.name', '$.role', '$.underlayIp', '$.masters', '$.cluster.keys'],
  );
  t.match(problems({ ...minimal, membership: { overrides: { probeIntervalMs: 10, probeTimout: 5 } } }), [{ path: '$.membership.overrides.probeTimout' }]);
  t.match(problems({ ...minimal, membership: { overrides: { probeIntervalMs: -5 } } }), [{ path: '$.membership.overrides', expected: /probeIntervalMs/ }]);
  t.match(problems({ ...minimal, overlay: { networks: [{ name: 'dcos', subnet: '9.0.0.0/8', prefx: 24 }] } }), [{ path: '$.overlay.networks[0].prefx' }]);
  t.match(problems({ ...minimal, overlay: { networks: [{ name: 'default', subnet: '9.0.0.0/8', prefix: 24 }] } }), [{ path: /\$\.overlay\.networks\[0\]\.name/, expected: /default/ }]);
  t.match(problems({ ...minimal, overlay: { vtepMtu: 1 } }), [{ path: '$.overlay.vtepMtu' }]);
  t.match(problems({ ...minimal, role: 'master', name: 'm9' }), [{ path: '$.masters', expected: /"m9"/ }]);
  t.same(problems({ ...minimal, role: 'master', name: 'm1' }), []);
  t.match(problems([1]), [{ path: '$', expected: 'an object' }]);
  t.match(problems({ ...minimal, cluster: 'x' }), [{ path: '$.cluster', expected: 'an object' }]);
  t.match(problems({ ...minimal, seeds: 'host:1' }), [{ path: '$.seeds' }]);
  t.match(problems({ ...minimal, dataplane: { enabled: 'yes' } }), [{ path: '$.dataplane.enabled', expected: 'true or false' }]);
  const custom = parseConfig({ ...minimal, overlay: { mtu: 1400 }, membership: { overrides: { probeIntervalMs: 2000 } } });
  t.equal(custom.overlay.mtu, 1400);
  t.equal(custom.overlay.vni, 1024, 'overlay settings not given keep their defaults');
  t.same(custom.membership.overrides, { probeIntervalMs: 2000 });
});

t.test('JSON text errors', async (t) => {
  t.throws(() => parseConfigText('{ "name": ', 'lashup.json'), { code: 'LASHUP_ERR_CONFIG_INVALID', message: /lashup\.json is not valid JSON/ });
  t.equal(parseConfigText(JSON.stringify(minimal)).name, 'agent-1');
});

t.test('whole-line // comments are skipped; error positions keep their lines', async (t) => {
  const text = `// an agent\n{\n  // its name\n  "name": "agent-1",\n${JSON.stringify(minimal).slice(1)}`;
  t.equal(parseConfigText(text).name, 'agent-1');
  t.equal(stripLineComments('a\n  // b\nc'), 'a\n\nc', 'the comment line is blanked, not removed');
  t.equal(stripLineComments('{"url": "http://x//y"}'), '{"url": "http://x//y"}', 'a // inside a value is not a comment');
  t.throws(() => parseConfigText('{ "name": "a" // trailing\n}'), { code: 'LASHUP_ERR_CONFIG_INVALID' }, 'a comment after a value is not accepted');
});

t.test('every setting is documented in the README', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const paths = configReference().map((line) => line.split(' ')[0] as string);
  t.ok(paths.length >= 20, `${paths.length} settings`);
  t.same(
    paths.filter((p) => !readme.includes(`\`${p}\``)),
    [],
    'README config reference lists every setting',
  );
});

t.test('issue 14 item 7: seeds are validated at start, and overlaps name their values', async (t) => {
  let error: ConfigError | undefined;
  try {
    parseConfig({
      ...minimal,
      seeds: ['not-a-seed', '192.0.2.1:99999', '192.0.2.1:62502', '[2001:db8::1]:62502', '/ip4/192.0.2.1/tcp/62502', '/ip4/300.1.1.1/tcp/1', '/ip4/192.0.2.1/udp/5', 'seed.example:0', 7],
    });
  } catch (err) {
    error = err as ConfigError;
  }
  t.ok(error instanceof ConfigError, 'refused as an invalid configuration (exit 4)');
  t.same(
    error?.problems.map((p) => p.path),
    ['$.seeds[0]', '$.seeds[1]', '$.seeds[5]', '$.seeds[6]', '$.seeds[7]', '$.seeds[8]'],
    'each bad seed by its JSON path; good ones pass',
  );
  t.match(error?.message, /\$\.seeds\[0\] = "not-a-seed": expected no port/);
  t.match(error?.message, /\$\.seeds\[1\] = "192\.0\.2\.1:99999": expected port "99999" is not an integer from 1 to 65535/);
  t.same(parseConfig({ ...minimal, seeds: ['m1.cluster.example:62502'] }).seeds, ['m1.cluster.example:62502'], 'a host name is a valid seed');
  const overlap = problems({
    ...minimal,
    overlay: {
      networks: [
        { name: 'a', subnet: '10.0.0.0/8', prefix: 24 },
        { name: 'b', subnet: '10.1.0.0/16', prefix: 24 },
      ],
    },
  });
  t.match(overlap, [{ path: '$.overlay.networks[1].subnet', expected: /overlaps/ }]);
  try {
    parseConfig({
      ...minimal,
      overlay: {
        networks: [
          { name: 'a', subnet: '10.0.0.0/8', prefix: 24 },
          { name: 'b', subnet: '10.1.0.0/16', prefix: 24 },
        ],
      },
    });
  } catch (err) {
    t.match((err as Error).message, /\$\.overlay\.networks\[1\]\.subnet = "10\.1\.0\.0\/16": expected/, 'the overlapping value is shown, not "(missing)"');
    t.notMatch((err as Error).message, /\(missing\)/);
  }
});

t.test('issue 19: an invalid isolation policy is refused with its JSON path', async (t) => {
  const overlay = { ...DEFAULT_OVERLAY_CONFIG, networks: [{ name: 'dev', subnet: '10.1.0.0/16', prefix: 24, allowFrom: ['dev'] }] };
  let error: ConfigError | undefined;
  try {
    parseConfig({ ...minimal, overlay });
  } catch (err) {
    error = err as ConfigError;
  }
  t.equal(error?.code, 'LASHUP_ERR_CONFIG_INVALID');
  t.match(error?.problems, [{ path: '$.overlay.networks[0].allowFrom[0]', value: 'dev' }]);
});
