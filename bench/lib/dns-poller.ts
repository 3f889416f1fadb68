/**
 * The DNS benchmark's probe, run inside a container namespace: `node dns-poller.js SERVER...`.
 * For each line `watch <name>` on stdin it asks every SERVER (port 53) for `<name>` A every
 * POLL_MS until each has answered with an address, printing `seen <name> <server> <absMs>` per
 * server and then `done <name>`; `timeout <name> <missing servers>` after TIMEOUT_MS. Bounded:
 * one query per server per POLL_MS, for at most TIMEOUT_MS per name; exits when stdin closes.
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import * as packet from 'dns-packet';

const POLL_MS = 10;
const TIMEOUT_MS = 15_000;
const servers = process.argv.slice(2);
const now = (): number => performance.timeOrigin + performance.now();
const socket = createSocket('udp4');
/** Per name: servers not yet seen answering it. */
const pending = new Map<string, Set<string>>();
let id = 0;

socket.on('message', (msg, rinfo) => {
  let reply: packet.Packet;
  try {
    reply = packet.decode(msg);
  } catch {
    return;
  }
  const name = reply.questions?.[0]?.name?.toLowerCase();
  const waiting = name === undefined ? undefined : pending.get(name);
  if (waiting === undefined || !waiting.has(rinfo.address)) return;
  if (!(reply.answers ?? []).some((a) => a.type === 'A')) return;
  waiting.delete(rinfo.address);
  process.stdout.write(`seen ${name} ${rinfo.address} ${now().toFixed(1)}\n`);
  if (waiting.size === 0) {
    pending.delete(name as string);
    process.stdout.write(`done ${name}\n`);
  }
});

function watch(name: string): void {
  const key = name.toLowerCase();
  pending.set(key, new Set(servers));
  const started = now();
  const tick = (): void => {
    const waiting = pending.get(key);
    if (waiting === undefined) return;
    if (now() - started > TIMEOUT_MS) {
      pending.delete(key);
      process.stdout.write(`timeout ${key} ${[...waiting].join(',')}\n`);
      return;
    }
    for (const server of waiting) {
      id = (id + 1) & 0xffff;
      socket.send(packet.encode({ id, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name: key, type: 'A' }] }), 53, server);
    }
    setTimeout(tick, POLL_MS);
  };
  tick();
}

socket.bind(0, () => {
  process.stdout.write('ready\n');
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, name] = line.trim().split(/\s+/);
    if (cmd === 'watch' && name !== undefined) watch(name);
  });
  process.stdin.on('end', () => process.exit(0));
});
