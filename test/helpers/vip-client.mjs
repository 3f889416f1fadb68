// A VIP client for kernel tests and the VIP benchmark. One JSON argument:
//   { host, port, count, protocol?: 'tcp'|'udp', name?, resolver?, byNameEvery?, timeoutMs? }
// Opens `count` connections one after another (TCP: connect, read the first line, close; UDP:
// send one datagram from a new socket, read the answer). With `name` and `resolver`, every
// `byNameEvery`-th connection (default 2) first resolves `name` (A) through `resolver` and
// connects to the answer, so the DNS name is exercised as clients use it. Prints one JSON line:
// { answers: [backend name or "error:<code>"], ms: [per-connection milliseconds] }. Bounded:
// each connection gives up after timeoutMs (default 3,000).
import { Resolver } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

const o = JSON.parse(process.argv[2]);
const timeoutMs = o.timeoutMs ?? 3000;
const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
if (o.resolver) resolver.setServers([o.resolver]);

const tcp = (host) =>
  new Promise((resolve) => {
    const c = connect(o.port, host);
    let data = '';
    const done = (v) => {
      c.destroy();
      resolve(v);
    };
    c.setTimeout(timeoutMs, () => done('error:timeout'));
    c.on('data', (d) => {
      data += d;
      if (data.includes('\n')) done(data.split('\n')[0]);
    });
    c.on('error', (e) => done(`error:${e.code}`));
    c.on('close', () => done(data === '' ? 'error:closed' : data.split('\n')[0]));
  });

const udp = (host) =>
  new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done('error:timeout'), timeoutMs);
    const done = (v) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    s.on('message', (m) => done(m.toString()));
    s.on('error', (e) => done(`error:${e.code}`));
    s.send('hello', o.port, host);
  });

const answers = [];
const ms = [];
for (let i = 0; i < o.count; i++) {
  const start = performance.now();
  let host = o.host;
  if (o.name && o.resolver && i % (o.byNameEvery ?? 2) === 0) {
    try {
      host = (await resolver.resolve4(o.name))[0];
    } catch (e) {
      answers.push(`error:dns-${e.code}`);
      ms.push(performance.now() - start);
      continue;
    }
  }
  answers.push(await (o.protocol === 'udp' ? udp(host) : tcp(host)));
  ms.push(performance.now() - start);
}
console.log(JSON.stringify({ answers, ms }));
