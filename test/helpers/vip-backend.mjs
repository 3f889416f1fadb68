// A VIP backend for kernel tests and the VIP benchmark: TCP on argv[3] (default 8080) writes
// "<name>\n" at once and then answers every chunk with "<name>:<chunk>"; UDP on argv[4] (default
// 5353) answers every datagram with "<name>". Prints "ready" once both listen; exits by itself
// after argv[5] ms (default 300,000), so a test that dies leaves nothing running.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const [name = 'backend', tcpPort = '8080', udpPort = '5353', lifeMs = '300000'] = process.argv.slice(2);
let up = 0;
const ready = () => {
  if (++up === 2) console.log('ready');
};
createServer((c) => {
  c.on('error', () => undefined);
  c.write(`${name}\n`);
  c.on('data', (d) => c.write(`${name}:${d.toString().trim()}\n`));
}).listen(Number(tcpPort), ready);
const udp = createSocket(udpPort.includes(':') ? 'udp6' : 'udp4');
udp.on('message', (_m, r) => udp.send(name, r.port, r.address));
udp.bind(Number(udpPort), ready);
setTimeout(() => process.exit(0), Number(lifeMs)).unref();
