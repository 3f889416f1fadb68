/**
 * Hostile input on every port a daemon opens (issue 17, item 4), bounded in count and time and
 * seeded: random datagrams at SWIM's UDP port; garbage, half-open and abandoned connections at
 * the libp2p port; malformed URIs, huge headers and bodies, and hundreds of watchers at the API;
 * garbage, oversize JSON and many connections at the CNI socket; random and mutated messages at
 * the DNS server. Each is answered or dropped and
 * counted, the daemons keep serving: a new agent joins and gets a lease afterwards, and the
 * master's heap after garbage collection stays within 20 % of what it was before.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import * as packet from 'dns-packet';
import { SeededRng } from '../../src/common/index.js';
import { FakeKernel } from '../../src/dataplane/index.js';
import { Daemon, type DaemonConfig } from '../../src/daemon/index.js';
import { generateClusterKey } from '../../src/net/index.js';
import { until } from '../helpers/until.js';
import { localDaemonConfig } from '../helpers/daemon-config.js';

const dir = mkdtempSync(join(tmpdir(), 'lashup-fuzz-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const key = generateClusterKey();
const rng = new SeededRng(20_261_204);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function config(name: string, role: 'master' | 'agent', underlayIp: string, seeds: string[]): DaemonConfig {
  const c = localDaemonConfig({ dir, key, label: 'fuzz-test' }, name, role, underlayIp, seeds);
  c.api.port = 0;
  return c;
}

const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rng.int(256)));

/** Opens a TCP or unix connection, writes `data` (if any) and resolves when the peer closed it or after `holdMs`. */
function poke(target: { port: number } | { path: string }, data: Buffer | undefined, holdMs: number): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
    const timer = setTimeout(() => socket.destroy(), holdMs);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('connect', () => {
      if (data !== undefined) socket.write(data);
    });
  });
}

function http(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    req.on('timeout', () => req.destroy());
    if (body !== undefined) req.write(body);
    req.end();
  });
}

t.test('hostile input on every port: answered or dropped, counted, and the daemons keep serving', { timeout: 180_000 }, async (t) => {
  const daemons: Daemon[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.stop(false))));
  const master = await Daemon.start(config('m1', 'master', '127.0.0.1', []), { firewall: false });
  daemons.push(master);
  const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(master.node.libp2p.multiaddrs[0] ?? '')?.[1]}`;
  const a1 = await Daemon.start(config('a1', 'agent', '192.0.2.41', [seed]), { kernel: new FakeKernel(), firewall: false });
  daemons.push(a1);
  await until(() => a1.lease !== undefined, 30_000, 'a1 leased');
  const heapBefore = heapAfterGc();
  const udpPort = Number(/:(\d+)$/.exec(master.node.udp?.localAddress ?? '')?.[1]);
  const libp2pPort = Number(/\/tcp\/(\d+)/.exec(master.node.libp2p.multiaddrs[0] ?? '')?.[1]);

  // UDP: 3,000 random datagrams of 0 to 1,400 bytes, in bursts of 200 (each burst handed to the
  // kernel before the next, so the socket buffer does not drop them before the daemon sees them).
  const udp = createSocket('udp4');
  for (let burst = 0; burst < 15; burst++) {
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => udp.send(bytes(rng.int(1401)), udpPort, '127.0.0.1', () => resolve()))));
  }
  udp.close();
  const udpDropped = (): number => (master.node.udp?.stats.droppedMalformed ?? 0) + (master.node.udp?.stats.droppedDecrypt ?? 0);
  await until(() => udpDropped() >= 2900, 10_000, 'UDP garbage dropped and counted');
  t.ok(udpDropped() >= 2900, `UDP garbage dropped and counted (${master.node.udp?.stats.droppedMalformed} malformed, ${master.node.udp?.stats.droppedDecrypt} not decryptable)`);

  // libp2p: 60 connections sending garbage, 30 half-open ones that say nothing for 2 s.
  await Promise.all([
    ...Array.from({ length: 60 }, () => poke({ port: libp2pPort }, bytes(1 + rng.int(4096)), 5000)),
    ...Array.from({ length: 30 }, () => poke({ port: libp2pPort }, undefined, 2000)),
  ]);
  t.ok(master.node.libp2p.stats && master.node.membership.member('a1')?.state === 'alive', 'the real agent stays alive to the master through it');

  // API: malformed escapes, a 200 KB path, 64 KB of headers, a 4 MB body, 300 watchers.
  const port = master.api.port;
  const auth = { authorization: `Bearer ${(await import('node:fs')).readFileSync(join(dir, 'm1', 'api.token'), 'utf8').trim()}`, 'x-lashup-request': 'fuzz' };
  const statuses: number[] = [];
  for (const path of ['/v1/kv/%zz', '/v1/kv/%', '/v1/%E0%A4%A', `/v1/kv/${'k'.repeat(200_000)}`, '/v1/allocations/%00/release', '//..//..', '/v1/kv/\u0000'])
    statuses.push(await http(port, 'GET', encodeURI(path).replace(/%25/g, '%'), auth));
  statuses.push(await http(port, 'GET', '/v1/status', { ...auth, 'x-big': 'h'.repeat(64 * 1024) }));
  for (const headers of [{ 'content-length': String(4 * 1024 * 1024) }, {}] as Record<string, string>[]) {
    const huge = await http(port, 'POST', '/v1/allocations/a9/release', { ...auth, 'content-type': 'application/json', ...headers }, bytes(4 * 1024 * 1024));
    t.ok(huge === 413 || huge === -1, `a 4 MB body (${'content-length' in headers ? 'with a length' : 'chunked'}) is refused (413, or the connection closed while sending): ${huge}`);
  }
  t.same(
    statuses.filter((s) => s >= 500 || s === 200),
    [],
    `every malformed request refused with a 4xx or the connection closed, none answered 200 or 5xx (${statuses.join(' ')})`,
  );
  const watchers = await Promise.all(
    Array.from(
      { length: 300 },
      () =>
        new Promise<() => void>((resolve) => {
          const req = request({ host: '127.0.0.1', port, path: '/v1/kv/overlay%2Fdcos?watch=1', headers: auth }, (res) => {
            res.on('data', () => undefined);
            resolve(() => req.destroy());
          });
          req.on('error', () => resolve(() => undefined));
          req.end();
        }),
    ),
  );
  t.equal(master.api.stats.watchers, 300, '300 watchers served at once');
  for (const close of watchers) close();
  await until(() => master.api.stats.watchers === 0, 10_000, 'every watcher released when its client went');

  // CNI socket (the agent's): garbage lines, an oversize JSON line, 200 connections at once.
  const cniPath = a1.config.cni.socketPath;
  const badBefore = a1.cni?.stats.badRequests ?? 0;
  await Promise.all(Array.from({ length: 50 }, () => poke({ path: cniPath }, Buffer.concat([bytes(1 + rng.int(2000)), Buffer.from('\n')]), 3000)));
  await poke({ path: cniPath }, Buffer.from(`{"op":"add","network":"dcos","containerId":"${'x'.repeat(2 * 1024 * 1024)}"}\n`), 5000);
  await Promise.all(Array.from({ length: 200 }, () => poke({ path: cniPath }, Buffer.from('{"op":"nonsense"}\n'), 3000)));
  t.ok((a1.cni?.stats.badRequests ?? 0) - badBefore >= 200, `CNI garbage refused and counted (${(a1.cni?.stats.badRequests ?? 0) - badBefore})`);

  // DNS (the master's server): 1,500 random datagrams and 1,500 mutations of a real query (bytes
  // flipped, cut short, counts raised), in bursts; then a real query is still answered.
  const dnsPort = ((await (await fetch(`http://127.0.0.1:${port}/v1/tasks`, { headers: auth })).json()) as { dns: { port: number } }).dns.port;
  const valid = packet.encode({ id: 1, type: 'query', questions: [{ name: 'web.marathon.containerip.dcos.thisdcos.directory', type: 'A' }] });
  const dnsStats = (): { malformed?: number; queries?: Record<string, Record<string, number>> } => (master.componentStats()['dns'] ?? {}) as { malformed?: number };
  const dns = createSocket('udp4');
  const handled = (): number => (dnsStats().malformed ?? 0) + Object.values(dnsStats().queries ?? {}).reduce((sum, row) => sum + Object.values(row).reduce((x, y) => x + y, 0), 0);
  const handledBefore = handled();
  // Bursts of 50, each awaited until the server took most of it: the server runs in this
  // process, so it cannot read while a burst is sent, and a larger burst overflows the socket's
  // receive buffer (the kernel drops what does not fit, which would test nothing).
  for (let burst = 0; burst < 60; burst++) {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        let m: Buffer;
        if (i % 2 === 0) m = bytes(rng.int(600));
        else {
          m = Buffer.from(valid);
          for (let f = 0; f < 1 + rng.int(4); f++) m[rng.int(m.length)] = rng.int(256);
          if (rng.int(3) === 0) m = m.subarray(0, rng.int(m.length));
          if (rng.int(3) === 0 && m.length >= 12) m.writeUInt16BE(0xffff, 4 + 2 * rng.int(4));
        }
        return new Promise<void>((resolve) => dns.send(m, dnsPort, '127.0.0.1', () => resolve()));
      }),
    );
    await until(() => handled() - handledBefore >= (burst + 1) * 45, 5000, `DNS burst ${burst + 1} taken`).catch(() => undefined);
  }
  const answered = await new Promise<Buffer | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 5000);
    dns.on('message', (m) => {
      if (m.length >= 2 && m.readUInt16BE(0) === 0x5151) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    dns.send(packet.encode({ id: 0x5151, type: 'query', questions: [{ name: 'nope.marathon.containerip.dcos.thisdcos.directory', type: 'A' }] }), dnsPort, '127.0.0.1');
  });
  dns.close();
  t.equal(answered === undefined ? 'no answer' : (packet.decode(answered) as unknown as { rcode: string }).rcode, 'NXDOMAIN', 'the DNS server still answers after the garbage');
  const taken = handled() - handledBefore;
  t.ok(taken >= 2700, `DNS garbage answered or dropped, and counted (${taken} of 3,000: ${dnsStats().malformed} malformed)`);

  // Memory of the process (the master and the agent that took all this), after garbage collection.
  const heapAfter = heapAfterGc();
  t.ok(heapAfter <= heapBefore * 1.2, `heap after GC within 20 % of before: ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MiB`);

  // Still serving: a new agent joins and gets a lease; the API answers.
  const a2 = await Daemon.start(config('a2', 'agent', '192.0.2.42', [seed]), { kernel: new FakeKernel(), firewall: false });
  daemons.push(a2);
  await until(() => a2.lease !== undefined, 30_000, 'a new agent got a lease after the fuzzing');
  t.not(a2.lease?.networks['dcos']?.subnet, a1.lease?.networks['dcos']?.subnet, 'a distinct subnet');
  t.equal(await http(port, 'GET', '/v1/status', auth), 200, 'the API answers');
});
