// Holds one TCP connection through a VIP open (kernel tests): connects to argv[2]:argv[3], prints
// the backend's first line, then sends every line it reads on stdin over the connection and
// prints the answer; prints "closed" when the connection ends. Exits by itself after argv[4] ms
// (default 300,000).
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const [host, port, lifeMs = '300000'] = process.argv.slice(2);
const c = connect(Number(port), host);
let buffer = '';
c.on('data', (d) => {
  buffer += d;
  let i = buffer.indexOf('\n');
  while (i >= 0) {
    console.log(buffer.slice(0, i));
    buffer = buffer.slice(i + 1);
    i = buffer.indexOf('\n');
  }
});
c.on('error', (e) => console.log(`error:${e.code}`));
c.on('close', () => {
  console.log('closed');
  process.exit(0);
});
createInterface({ input: process.stdin }).on('line', (line) => c.write(`${line}\n`));
setTimeout(() => process.exit(0), Number(lifeMs)).unref();
