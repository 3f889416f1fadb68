/**
 * `npm run package`: the Debian package of lashup, built with dpkg-deb from `npm run build`'s
 * bundle. Nothing is fetched at install time: the bundle already holds every production dependency
 * but the two esbuild leaves out (netlink, a native addon found beside its package, and
 * msgpackr-extract, msgpackr's optional accelerator); those are copied with their own runtime
 * dependencies into /usr/lib/lashup/node_modules.
 *
 *   /usr/bin/lashup, /usr/bin/lashup-ipam      wrappers running the bundle with Node.js (>= 20)
 *   /usr/lib/cni/lashup-ipam                   the CNI plugin where runtimes look (a link)
 *   /usr/lib/lashup/                           the bundle, package.json, node_modules
 *   /etc/lashup/config.json.example            a commented example (a conffile)
 *   /lib/systemd/system/lashup.service         the unit (Type=notify)
 *   /usr/share/lashup/prometheus/              alerting rules
 *   /usr/share/doc/lashup/                     README, copyright
 *   /var/lib/lashup                            the data directory, root 0700
 *
 * Usage: node tools/package.mjs [--out DIR]   (default dist/package); prints the .deb's path.
 * The maintainer scripts honour DPKG_ROOT (dpkg's variable for installs into another root), which
 * is how the package test checks their effects in a temporary root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Written by `npm run build`, which `npm run package` runs first.
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../dist/src/daemon/runtime-flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const outDir = resolve(outIndex >= 0 && args[outIndex + 1] !== undefined ? args[outIndex + 1] : join(root, 'dist', 'package'));

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = pkg.version;
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const bundle = join(root, 'dist', 'bundle');
if (!existsSync(join(bundle, 'lashup.cjs'))) {
  console.error(`package: ${bundle}/lashup.cjs is missing; run npm run build first`);
  process.exit(1);
}

const stage = join(outDir, `lashup_${version}_${arch}`);
rmSync(stage, { recursive: true, force: true });
const at = (path) => join(stage, path);
const dir = (path, mode = 0o755) => {
  mkdirSync(at(path), { recursive: true });
  chmodSync(at(path), mode);
};
const file = (path, text, mode = 0o644) => {
  mkdirSync(dirname(at(path)), { recursive: true });
  writeFileSync(at(path), text);
  chmodSync(at(path), mode);
};

// The bundle: every entry and chunk but the cluster benchmark's worker; no source maps (most of the
// size; stack traces name bundled functions and chunk columns either way, and the same version's
// build has the maps).
dir('usr/lib/lashup');
for (const name of readdirSync(bundle)) {
  if (!/\.(js|cjs|cjs\.cache)$/.test(name) || name.startsWith('bench-')) continue;
  cpSync(join(bundle, name), at(`usr/lib/lashup/${name}`));
}
file('usr/lib/lashup/package.json', `${JSON.stringify({ name: 'lashup', version, private: true, type: 'module' }, null, 2)}\n`);

// The externals and their runtime dependencies. Left out: type packages and node-addon-api
// (C++ headers, used only when building an addon from source; netlink ships prebuilt binaries).
const BUILD_ONLY = (name) => name.startsWith('@types/') || name === 'node-addon-api';
const copied = new Set();
const copyPackage = (name) => {
  if (copied.has(name) || BUILD_ONLY(name)) return;
  const from = join(root, 'node_modules', name);
  if (!existsSync(from)) return; // an optional dependency for another platform
  copied.add(name);
  cpSync(from, at(`usr/lib/lashup/node_modules/${name}`), {
    recursive: true,
    // Nested node_modules are resolved as packages of their own; maps and type declarations
    // are of no use at run time.
    filter: (src) => !src.slice(from.length).includes('/node_modules') && !/\.(map|d\.ts)$/.test(src),
  });
  const meta = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
  for (const dep of [...Object.keys(meta.dependencies ?? {}), ...Object.keys(meta.optionalDependencies ?? {})]) copyPackage(dep);
};
for (const external of ['netlink', 'msgpackr-extract']) copyPackage(external);

// Commands. Wrappers, not links to the bundle: runtimes exec the CNI plugin with their own PATH,
// and the wrapper finds the bundle relative to itself (so an unpacked tree runs too).
// The daemon's command carries the Node flags and environment it is measured with
// (src/daemon/runtime-flags.ts; an operator's own environment value wins); the CNI plugin lives
// for one request and takes Node's defaults.
const nodeFlags = (entry) => (entry === 'lashup' ? DAEMON_NODE_FLAGS.map((f) => `${f} `).join('') : '');
const nodeEnv = (entry) =>
  entry === 'lashup'
    ? Object.entries(DAEMON_ENV)
        .map(([k, v]) => `export ${k}="\${${k}:-${v}}"\n`)
        .join('')
    : '';
const wrapper = (entry) => `#!/bin/sh
# ${entry}: lashup's bundled ${entry === 'lashup' ? 'CLI and daemon' : 'CNI IPAM plugin'}, run by Node.js (>= 20).
here=$(dirname "$(readlink -f "$0")")
node=\${LASHUP_NODE:-$(command -v node || echo /usr/bin/node)}
${nodeEnv(entry)}exec "$node" ${nodeFlags(entry)}"$here/../lib/lashup/${entry}${entry === 'lashup' ? '.cjs' : '.js'}" "$@"
`;
file('usr/bin/lashup', wrapper('lashup'), 0o755);
file('usr/bin/lashup-ipam', wrapper('lashup-ipam'), 0o755);
dir('usr/lib/cni');
symlinkSync('../../bin/lashup-ipam', at('usr/lib/cni/lashup-ipam'));

file('etc/lashup/config.json.example', readFileSync(join(root, 'packaging', 'config.json.example'), 'utf8'));
file('lib/systemd/system/lashup.service', readFileSync(join(root, 'packaging', 'lashup.service'), 'utf8'));
file('usr/share/lashup/prometheus/lashup-alerts.yml', readFileSync(join(root, 'packaging', 'prometheus', 'lashup-alerts.yml'), 'utf8'));
file('usr/share/doc/lashup/README.md', readFileSync(join(root, 'README.md'), 'utf8'));
file(
  'usr/share/doc/lashup/copyright',
  `lashup ${version}\n\nWritten by the lashup authors. Bundled third-party packages keep their own licences; see\n/usr/lib/lashup/node_modules/*/LICENSE and the headers in /usr/lib/lashup/*.js.\n`,
);
// The data directory: peer key, store, Raft state, lease, API token. Root only.
dir('var/lib/lashup', 0o700);

// Maintainer scripts.
const script = (body) => `#!/bin/sh\nset -e\nroot="\${DPKG_ROOT:-}"\n${body}\nexit 0\n`;
const underSystemd = '[ -z "$root" ] && [ -d /run/systemd/system ]';
file(
  'DEBIAN/postinst',
  script(`case "$1" in
  configure)
    # The data directory holds the peer key and the API token: root only, also when it existed.
    install -d -m 0700 -o root -g root "$root/var/lib/lashup"
    install -d -m 0755 "$root/etc/cni/net.d"
    if ${underSystemd}; then
      systemctl daemon-reload || true
      # An upgrade restarts a running daemon on the new version (one node at a time makes a
      # rolling upgrade; kernel routes stay up across the restart). A first install starts
      # nothing: write /etc/lashup/config.json, then systemctl enable --now lashup.
      if [ -n "$2" ] && systemctl is-active --quiet lashup.service; then systemctl restart lashup.service || true; fi
    fi
    ;;
esac`),
  0o755,
);
file(
  'DEBIAN/prerm',
  script(`case "$1" in
  remove)
    # Leave the cluster gracefully before the files go.
    if ${underSystemd}; then systemctl stop lashup.service || true; fi
    ;;
esac`),
  0o755,
);
file(
  'DEBIAN/postrm',
  script(`case "$1" in
  purge)
    # Purge forgets this node: its peer key, store copy and lease. Release it on a master
    # (lashup allocations release NAME) so its subnet can be handed out again.
    rm -rf "$root/var/lib/lashup"
    ;;
esac
if ${underSystemd}; then systemctl daemon-reload || true; fi`),
  0o755,
);
file('DEBIAN/conffiles', '/etc/lashup/config.json.example\n');

const installedKiB = (path) => {
  const s = statSync(path, { throwIfNoEntry: false });
  if (s === undefined) return 0;
  if (!s.isDirectory()) return Math.ceil(s.size / 1024);
  return readdirSync(path).reduce((sum, name) => sum + installedKiB(join(path, name)), 0);
};
const size = readdirSync(stage)
  .filter((n) => n !== 'DEBIAN')
  .reduce((sum, n) => sum + installedKiB(at(n)), 0);
file(
  'DEBIAN/control',
  `Package: lashup
Version: ${version}
Architecture: ${arch}
Maintainer: lashup developers <lashup@localhost>
Section: net
Priority: optional
Installed-Size: ${size}
Depends: nodejs (>= 20), nftables, iproute2
Recommends: containernetworking-plugins
Description: peer-to-peer overlay network daemon for containers
 lashup runs on every node of a cluster: SWIM membership over encrypted UDP,
 overlay routes replicated in CRDT maps over libp2p gossip, per-agent subnets
 from a Raft group of masters, VXLAN programmed through netlink, CNI and Docker
 networks, DNS names and VIPs for tasks.
`,
);

const deb = join(outDir, `lashup_${version}_${arch}.deb`);
execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
rmSync(stage, { recursive: true, force: true });
console.log(deb);
