// A stand-in upstream resolver for the DNS kernel test, run inside a network namespace:
// answers every A question on UDP <address>:<port> with 203.0.113.7 (TEST-NET-3, never routed),
// prints "ready" once bound, and exits by itself after <lifetimeMs> (the test ends it earlier
// by its PID) so it can never outlive a failed test for long.
import { createSocket } from 'node:dgram';
import * as packet from 'dns-packet';

const [address, port, lifetimeMs] = process.argv.slice(2);
const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
socket.on('message', (msg, rinfo) => {
  let query;
  try {
    query = packet.decode(msg);
  } catch {
    return;
  }
  const q = query.questions?.[0];
  if (q === undefined) return;
  const answers = q.type === 'A' ? [{ type: 'A', class: 'IN', name: q.name, ttl: 30, data: '203.0.113.7' }] : [];
  socket.send(packet.encode({ id: query.id, type: 'response', flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: [q], answers }), rinfo.port, rinfo.address);
});
socket.bind(Number(port), address, () => process.stdout.write('ready\n'));
setTimeout(() => process.exit(0), Number(lifetimeMs)).unref();
setTimeout(() => undefined, Number(lifetimeMs));
