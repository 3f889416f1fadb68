/**
 * Yamux window updates at half a window (src/net/yamux-window.ts), on two real libp2p nodes:
 * small messages no longer cost an update frame each, and flow control still works — a
 * transfer many windows long arrives whole, in order, in both directions. The same transfer
 * runs noise's frame decoding through the empty-buffer answer (src/net/length-prefix-decoder.ts).
 */
import t from 'tap';
import { libp2pPair } from '../helpers/libp2p-pair.js';
import type { Libp2pNode } from '../../src/net/index.js';
import { yamuxWindowStats } from '../../src/net/yamux-window.js';
import { lengthPrefixStats } from '../../src/net/length-prefix-decoder.js';

const ECHO = '/lashup/test/echo/1';

t.test('small messages hold their window updates back; a transfer of many windows arrives whole', async (t) => {
  const [a, b] = await libp2pPair(t, 'yamux-test');
  b.handle(ECHO, (stream) => stream.onMessage(({ data }) => stream.send(data)));
  const stream = await new Promise<Parameters<Parameters<Libp2pNode['open']>[2]>[1]>((resolve, reject) => a.open(b.localAddress, ECHO, (error, s) => (error === null ? resolve(s) : reject(error))));
  if (stream === undefined) throw new Error('no stream');
  const received: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  stream.onMessage(({ data }) => {
    received.push(data.slice());
    wake?.();
  });
  const receivedCount = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (received.length >= n) {
          wake = undefined;
          resolve();
        } else wake = check;
      };
      check();
    });

  // 200 small echoes, one at a time: 400 data frames received between the two nodes.
  const before = { ...yamuxWindowStats };
  for (let i = 0; i < 200; i++) {
    stream.send(Uint8Array.of(i & 0xff, 1, 2, 3));
    await receivedCount(i + 1);
  }
  const held = yamuxWindowStats.held - before.held;
  const passed = yamuxWindowStats.passed - before.passed;
  t.ok(held >= 390, `most updates held back (${held} held, ${passed} sent)`);
  t.ok(passed <= 10, `only the stream's opening flags went out (${passed})`);
  t.ok(
    received.every((m, i) => m[0] === (i & 0xff) && m.length === 4),
    'every echo came back in order',
  );

  // 4 MiB in 64 KiB messages, echoed: 16 initial windows each way, so the sender must be
  // credited again many times; it stalls for good if an update is withheld wrongly.
  received.length = 0;
  const chunk = 64 * 1024;
  const total = 64;
  for (let i = 0; i < total; i++) stream.send(new Uint8Array(chunk).fill(i));
  await receivedCount(total);
  t.equal(received.length, total, 'every large message came back');
  t.ok(
    received.every((m, i) => m.length === chunk && m[0] === i && m[chunk - 1] === i),
    'each large message whole and in order',
  );
  t.ok(yamuxWindowStats.passed - before.passed - passed > 0, 'window updates went out for the large transfer');
  // The same connection decoded its noise frames through the empty-buffer answer
  // (src/net/length-prefix-decoder.ts): the large transfer above is its test over real frames.
  t.ok(lengthPrefixStats.decoders > 0, `noise decoders with the empty-buffer answer: ${lengthPrefixStats.decoders}`);
  stream.close();
});
