/**
 * The Debian package (issue 23): built by tools/package.mjs from the build, inspected with
 * dpkg-deb, unpacked into a temporary root with its maintainer script run against that root
 * (DPKG_ROOT), and run from there: `lashup --version`, `lashup config-reference`, the CNI plugin,
 * the native addon loading from the package's own node_modules, the example configuration
 * parsing once filled in, and `systemd-analyze verify` on the unit.
 */
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { DAEMON_ENV, DAEMON_NODE_FLAGS, parseConfigText } from '../../src/daemon/index.js';
import { lashupCommand } from '../helpers/lashup-cli.js';
import { run } from '../helpers/netns.js';

const TOOLS = ['/usr/bin/dpkg-deb', '/usr/bin/systemd-analyze'];
const missing = TOOLS.filter((p) => !existsSync(p));
if (missing.length > 0 && process.env['CI'] === 'true') throw new Error(`the package test needs ${missing.join(', ')}; required because CI=true`);
const skip = missing.length > 0 ? `the package test needs ${missing.join(', ')} (Debian packages dpkg, systemd)` : false;

const root = resolve('.');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

const exec = (file: string, args: string[], env?: NodeJS.ProcessEnv) => run([file, ...args], 120_000, env === undefined ? {} : { env });

t.test('the Debian package builds, unpacks and runs from a temporary root', { skip, timeout: 300_000 }, async (t) => {
  await lashupCommand(); // builds dist/ when it is older than src/ (a single-file run)
  const work = mkdtempSync(join(tmpdir(), 'lashup-pkg-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  const built = await exec(process.execPath, [join(root, 'tools', 'package.mjs'), '--out', work]);
  t.equal(built.code, 0, built.stderr);
  const deb = built.stdout.trim();
  t.match(deb, new RegExp(`lashup_${version.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`));

  const info = await exec('dpkg-deb', ['--info', deb]);
  t.equal(info.code, 0, info.stderr);
  t.match(info.stdout, /Package: lashup/);
  t.match(info.stdout, new RegExp(`Version: ${version.replace(/\./g, '\\.')}`));
  t.match(info.stdout, /Depends: nodejs \(>= 20\), nftables, iproute2/);
  t.match(info.stdout, /Recommends: containernetworking-plugins/);
  for (const script of ['postinst', 'prerm', 'postrm', 'conffiles']) t.match(info.stdout, new RegExp(`\\b${script}\\b`), `control archive holds ${script}`);

  const contents = await exec('dpkg-deb', ['--contents', deb]);
  t.equal(contents.code, 0, contents.stderr);
  const entries = new Map(
    contents.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const fields = line.split(/\s+/);
        return [(fields[5] as string).replace(/^\.\//, '/').replace(/\/$/, ''), { mode: fields[0] as string, owner: fields[1] as string }] as const;
      }),
  );
  for (const path of [
    '/usr/bin/lashup',
    '/usr/bin/lashup-ipam',
    '/usr/lib/cni/lashup-ipam',
    '/usr/lib/lashup/lashup.cjs',
    '/usr/lib/lashup/lashup-main.cjs',
    '/usr/lib/lashup/lashup-main.cjs.cache',
    '/usr/lib/lashup/lashup-ipam.js',
    '/usr/lib/lashup/notify-child.cjs',
    '/usr/lib/lashup/node_modules/netlink/package.json',
    '/etc/lashup/config.json.example',
    '/lib/systemd/system/lashup.service',
    '/usr/share/lashup/prometheus/lashup-alerts.yml',
    '/var/lib/lashup',
  ]) {
    t.ok(entries.has(path), `the package holds ${path}`);
  }
  t.equal(entries.get('/var/lib/lashup')?.mode, 'drwx------', 'the data directory is 0700');
  t.equal(entries.get('/var/lib/lashup')?.owner, 'root/root', 'the data directory belongs to root');
  t.equal(entries.get('/usr/bin/lashup')?.mode, '-rwxr-xr-x');
  t.notOk(
    [...entries.keys()].some((p) => p.endsWith('.map') || p.includes('bench-')),
    'no source maps or benchmark workers',
  );

  const unpacked = join(work, 'root');
  const x = await exec('dpkg', ['-x', deb, unpacked]);
  t.equal(x.code, 0, x.stderr);
  const control = join(work, 'control');
  const e = await exec('dpkg-deb', ['-e', deb, control]);
  t.equal(e.code, 0, e.stderr);
  t.equal(readFileSync(join(control, 'conffiles'), 'utf8').trim(), '/etc/lashup/config.json.example');

  // The maintainer script's effects, against the temporary root.
  rmSync(join(unpacked, 'var', 'lib', 'lashup'), { recursive: true });
  const postinst = await exec('/bin/sh', [join(control, 'postinst'), 'configure', ''], { ...process.env, DPKG_ROOT: unpacked });
  t.equal(postinst.code, 0, postinst.stderr);
  t.equal(statSync(join(unpacked, 'var', 'lib', 'lashup')).mode & 0o777, 0o700, 'postinst creates the data directory 0700');
  t.ok(statSync(join(unpacked, 'etc', 'cni', 'net.d')).isDirectory(), 'postinst creates the CNI configuration directory');
  const postrm = await exec('/bin/sh', [join(control, 'postrm'), 'purge'], { ...process.env, DPKG_ROOT: unpacked });
  t.equal(postrm.code, 0, postrm.stderr);
  t.notOk(existsSync(join(unpacked, 'var', 'lib', 'lashup')), 'purge removes the data directory');

  // Run from the unpacked tree.
  const lashup = join(unpacked, 'usr', 'bin', 'lashup');
  // The packaged command runs its program through vm.Script: with tap's coverage on, the program's
  // source map put every bundled dependency into the coverage report (see test/e2e/bundle.test.ts).
  const noCoverage = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' };
  const v = await exec(lashup, ['--version'], noCoverage);
  t.equal(v.code, 0, v.stderr);
  t.equal(v.stdout.trim(), version, 'lashup --version prints package.json version');
  const ref = await exec(lashup, ['config-reference'], noCoverage);
  t.equal(ref.code, 0, ref.stderr);
  t.match(ref.stdout, /^name \(/m);
  t.match(ref.stdout, /peers\.degree/);
  // The daemon's command runs Node with the daemon's flags and environment (the ones the
  // benchmarks measure; an operator's own value wins); the CNI plugin with Node's defaults. A
  // stand-in for Node prints what it was given.
  const echoNode = join(work, 'echo-node');
  const envNames = Object.keys(DAEMON_ENV);
  writeFileSync(echoNode, `#!/bin/sh\necho ${envNames.map((k) => `${k}=\${${k}-unset}`).join(' ')}\necho "$@"\n`, { mode: 0o755 });
  const bare = Object.fromEntries(Object.entries(process.env).filter(([k]) => !envNames.includes(k)));
  const viaWrapper = await exec(lashup, ['run', '--config', 'x'], { ...bare, LASHUP_NODE: echoNode });
  t.same(viaWrapper.stdout.trim().split('\n'), [
    Object.entries(DAEMON_ENV)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
    [...DAEMON_NODE_FLAGS, `${unpacked}/usr/bin/../lib/lashup/lashup.cjs`, 'run', '--config', 'x'].join(' '),
  ]);
  const ownValues = Object.fromEntries(envNames.map((k) => [k, '7']));
  const overridden = await exec(lashup, ['run'], { ...bare, ...ownValues, LASHUP_NODE: echoNode });
  t.equal(overridden.stdout.split('\n')[0], envNames.map((k) => `${k}=7`).join(' '), "an operator's own environment value wins");
  const ipamViaWrapper = await exec(join(unpacked, 'usr', 'bin', 'lashup-ipam'), [], { ...bare, LASHUP_NODE: echoNode });
  t.same(ipamViaWrapper.stdout.trim().split('\n'), [envNames.map((k) => `${k}=unset`).join(' '), `${unpacked}/usr/bin/../lib/lashup/lashup-ipam.js`]);
  t.ok(lstatSync(join(unpacked, 'usr', 'lib', 'cni', 'lashup-ipam')).isSymbolicLink());
  t.equal(readlinkSync(join(unpacked, 'usr', 'lib', 'cni', 'lashup-ipam')), '../../bin/lashup-ipam');
  const cni = await exec(join(unpacked, 'usr', 'lib', 'cni', 'lashup-ipam'), [], { ...process.env, CNI_COMMAND: 'VERSION' });
  t.equal(cni.code, 0, cni.stderr);
  t.match(JSON.parse(cni.stdout), { supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  // The native addon (netlink) loads from the package's node_modules, as the daemon loads it.
  const addon = await exec(process.execPath, [
    '--input-type=module',
    '-e',
    `import { createRequire } from 'node:module'; const r = createRequire(${JSON.stringify(join(unpacked, 'usr', 'lib', 'lashup', 'lashup.cjs'))}); console.log(r.resolve('netlink'), typeof r('netlink').RawNetlinkSocket)`,
  ]);
  t.equal(addon.code, 0, addon.stderr);
  t.match(addon.stdout, new RegExp(`${unpacked}/usr/lib/lashup/node_modules/netlink/.* function`));

  // The example configuration: comments and all, valid once its placeholder key is filled in.
  const example = readFileSync(join(unpacked, 'etc', 'lashup', 'config.json.example'), 'utf8');
  t.match(example, /^\/\/ /m, 'the example is commented');
  const config = parseConfigText(example.replace('REPLACE-WITH-OUTPUT-OF-lashup-keygen', Buffer.alloc(32, 7).toString('base64')), 'example');
  t.equal(config.role, 'agent');
  t.throws(() => parseConfigText(example, 'example'), /cluster\.keys/, 'the unfilled example is refused, naming the key');

  // The unit: `systemd-analyze verify` prints a warning and still exits 0 for a bad directive, so
  // both the status and the output are checked. ExecStart is pointed at the unpacked command
  // (verify checks that it exists and is executable).
  const unitText = readFileSync(join(unpacked, 'lib', 'systemd', 'system', 'lashup.service'), 'utf8');
  t.match(unitText, /^Type=notify$/m);
  t.match(unitText, /^ExecStart=\/usr\/bin\/lashup run --config \/etc\/lashup\/config\.json$/m);
  t.match(unitText, /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW/m);
  t.match(unitText, /^Restart=on-failure$/m);
  const unit = join(work, 'lashup.service');
  writeFileSync(unit, unitText.replace('ExecStart=/usr/bin/lashup', `ExecStart=${lashup}`));
  const verify = await exec('systemd-analyze', ['verify', unit]);
  t.equal(verify.code, 0, verify.stderr);
  t.equal(verify.stderr.trim() + verify.stdout.trim(), '', 'systemd-analyze verify has nothing to say about the unit');
  const broken = join(work, 'broken', 'lashup.service');
  await exec('mkdir', ['-p', join(work, 'broken')]);
  writeFileSync(broken, unitText.replace('ExecStart=/usr/bin/lashup', `ExecStart=${lashup}`).replace('Type=notify', 'Type=notfy'));
  const verifyBroken = await exec('systemd-analyze', ['verify', broken]);
  t.match(verifyBroken.stderr, /notfy/, 'verify does name a bad directive (the check above can fail)');
});
