// Runs inside a network namespace (test/kernel/components.test.ts): starts a daemon from the
// compiled build with the real netlink kernel and nftables, failing the component named in
// argv[3] (or none), then reports on stdout what is left: child processes (the netlink helper
// is one), and whether the daemon's TCP and UDP ports can be bound again.
import '../../dist/src/polyfills.js';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Daemon, parseConfig } from '../../dist/src/daemon/index.js';

const [configPath, failing] = process.argv.slice(2);
const config = parseConfig(JSON.parse(readFileSync(configPath, 'utf8')));

/** Child processes of this process, by command name (ps itself left out). */
const childList = () => {
  try {
    return execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && l !== 'ps');
  } catch {
    return [];
  }
};
const children = () => childList().length;
const tcpFree = (port) =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, config.listen.bindHost, () => s.close(() => resolve(true)));
  });
const udpFree = (port) =>
  new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, config.listen.bindHost, () => s.close(() => resolve(true)));
  });

let outcome;
try {
  const daemon = await Daemon.start(config, {
    beforeStart: (name) => {
      if (name === failing) throw new Error(`injected failure in ${name}`);
    },
  });
  outcome = { started: true, children: children() };
  await daemon.stop(true);
} catch (err) {
  outcome = { started: false, code: err.code, component: err.component, message: err.message };
}
outcome.childrenAfter = children();
outcome.childNames = childList();
outcome.tcpFree = [await tcpFree(config.listen.libp2pPort), await tcpFree(config.api.port)];
outcome.udpFree = await udpFree(config.listen.udpPort);
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exit(0);
