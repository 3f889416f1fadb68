import t from 'tap';
import fc from 'fast-check';
import {
  buildPacket,
  decodePacket,
  decodeSync,
  encodeMessage,
  encodeSync,
  MAX_META_BYTES,
  MembershipError,
  MembershipErrorCode,
  MessageType,
  SyncMessageType,
  type SwimMessage,
  type SyncMessage,
} from '../../../src/membership/index.js';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const ALL: SwimMessage[] = [
  { type: MessageType.Ping, seq: 1, target: 'agent-1', source: 'agent-2' },
  { type: MessageType.IndirectPing, seq: 0xffffffff, target: 'agent-1', targetAddress: '192.0.2.1:7946', wantNack: true, source: 'agent-3' },
  { type: MessageType.Ack, seq: 42 },
  { type: MessageType.Nack, seq: 43 },
  { type: MessageType.Suspect, incarnation: 7, name: 'agent-1', from: 'agent-2' },
  { type: MessageType.Alive, incarnation: 0, name: 'agent-1', address: '192.0.2.1:7946', meta: Uint8Array.of(1, 2, 3) },
  { type: MessageType.Dead, incarnation: 9, name: 'agent-1', from: 'agent-1' },
];

function rejects(
  t: { ok(v: unknown, m: string): void; equal(a: unknown, b: unknown, m: string): void; match(a: string, b: RegExp, m: string): void; fail(m: string): void },
  bytes: Uint8Array,
  code: string,
  pattern: RegExp | undefined,
  what: string,
): void {
  try {
    decodePacket(bytes, 65_535);
    t.fail(`${what}: decoded`);
  } catch (err) {
    t.ok(err instanceof MembershipError, `${what}: a MembershipError`);
    t.equal((err as MembershipError).code, code, what);
    if (pattern !== undefined) t.match((err as Error).message, pattern, what);
  }
}

t.test('every message type round-trips, alone and compounded', async (t) => {
  for (const m of ALL) {
    const decoded = decodePacket(buildPacket([encodeMessage(m)]), 1400);
    t.same(decoded.messages, [m], `type ${m.type}`);
    t.equal(decoded.unknown, 0);
  }
  const all = decodePacket(buildPacket(ALL.map(encodeMessage)), 1400);
  t.same(all.messages, ALL, 'a compound packet keeps order');
  // 20 messages need the 3-byte array header.
  const many = Array.from({ length: 20 }, (_, i) => ({ type: MessageType.Ack, seq: i }) as SwimMessage);
  t.same(decodePacket(buildPacket(many.map(encodeMessage)), 1400).messages, many, 'array16 header');
  t.same(decodePacket(buildPacket([]), 1400).messages, [], 'an empty packet is valid');
});

t.test('unknown message types are skipped and counted; the rest is kept', async (t) => {
  const future = packr.pack([99, 'from a newer version', 1]);
  const decoded = decodePacket(buildPacket([encodeMessage(ALL[2] as SwimMessage), future, encodeMessage(ALL[3] as SwimMessage)]), 1400);
  t.same(decoded.messages, [ALL[2], ALL[3]]);
  t.equal(decoded.unknown, 1);
});

t.test('bad packets are refused with typed errors naming the place', async (t) => {
  rejects(t, packr.pack([2, [3, 1]]), MembershipErrorCode.UnsupportedVersion, /version 2/, 'another version');
  rejects(t, packr.pack('hello'), MembershipErrorCode.Decode, /expected \[version/, 'not an array');
  rejects(t, new Uint8Array(0), MembershipErrorCode.Decode, /empty/, 'empty');
  rejects(t, Uint8Array.of(0x93, 1), MembershipErrorCode.Decode, /not valid msgpack/, 'truncated');
  rejects(t, packr.pack([1, [3, -1]]), MembershipErrorCode.Decode, /packet\[1\]\.seq/, 'negative seq');
  rejects(t, packr.pack([1, [1, 1, 'x'.repeat(129), 'b']]), MembershipErrorCode.Decode, /target/, 'long name');
  rejects(t, packr.pack([1, [1, 1, '', 'b']]), MembershipErrorCode.Decode, /target/, 'empty name');
  rejects(t, packr.pack([1, [2, 1, 'a', 'addr', 1, 'b']]), MembershipErrorCode.Decode, /wantNack/, 'wantNack not boolean');
  rejects(t, packr.pack([1, [6, 1, 'a', 'addr', new Uint8Array(MAX_META_BYTES + 1)]]), MembershipErrorCode.Decode, /meta/, 'meta too large');
  rejects(t, packr.pack([1, [6, 2 ** 32, 'a', 'addr', new Uint8Array(0)]]), MembershipErrorCode.Decode, /incarnation/, 'incarnation too large');
  rejects(t, packr.pack([1, [5, 1, 'a']]), MembershipErrorCode.Decode, /suspect message has 4 items/, 'short suspect');
  rejects(t, packr.pack([1, 'x']), MembershipErrorCode.Decode, /message array/, 'message not an array');
  rejects(t, packr.pack([1, ['ping']]), MembershipErrorCode.Decode, /message type/, 'type not a number');
  rejects(t, new Uint8Array(70_000), MembershipErrorCode.Decode, /exceed/, 'over the size limit');
});

t.test('arbitrary bytes give a packet or a MembershipError, nothing else', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodePacket(bytes, 1400);
      } catch (err) {
        if (!(err instanceof MembershipError)) throw err;
      }
    }),
    { numRuns: 3000 },
  );
  const valid = buildPacket(ALL.map(encodeMessage));
  fc.assert(
    fc.property(fc.nat(valid.length - 1), fc.nat(255), fc.boolean(), (at, value, truncate) => {
      const bytes = truncate ? valid.slice(0, at) : valid.slice();
      if (!truncate) bytes[at] = value;
      try {
        decodePacket(bytes, 1400);
      } catch (err) {
        if (!(err instanceof MembershipError)) throw err;
      }
    }),
    { numRuns: 3000 },
  );
  t.pass('only typed errors');
});

t.test('sync messages round-trip and bad ones are refused', async (t) => {
  const hello = { type: SyncMessageType.Hello, joining: true, from: 'agent-1', buckets: 4, sums: Uint32Array.of(1, 2, 0xffffffff, 0) } as const;
  t.same(decodeSync(encodeSync(hello), 1 << 20), hello);
  const diff = { type: SyncMessageType.Diff, from: 'agent-2', differing: Uint8Array.of(5) } as const;
  t.same(decodeSync(encodeSync(diff), 1 << 20), diff);
  const records: SyncMessage = {
    type: SyncMessageType.Records,
    records: [{ name: 'a', address: 'addr', incarnation: 3, state: 2, meta: Uint8Array.of(9) }],
  };
  t.same(decodeSync(encodeSync(records), 1 << 20), records);
  t.same(decodeSync(encodeSync({ type: SyncMessageType.Done }), 1 << 20), { type: SyncMessageType.Done });
  const bad: [unknown, RegExp][] = [
    [[1, 2, true, 'a', 4, new Uint8Array(16)], /version 2/],
    [[1, 1, true, 'a', 3, new Uint8Array(12)], /power of two/],
    [[1, 1, true, 'a', 4, new Uint8Array(15)], /16 bytes/],
    [[1, 1, 'yes', 'a', 4, new Uint8Array(16)], /joining/],
    [[2, 'a'], /bitmap/],
    [[3, [['a', 'addr', 1, 7, new Uint8Array(0)]]], /member state/],
    [[3, 'x'], /records/],
    [[4, 1], /expected \[4\]/],
    [[9], /sync message type/],
  ];
  for (const [raw, pattern] of bad) {
    try {
      decodeSync(packr.pack(raw), 1 << 20);
      t.fail(`decoded ${JSON.stringify(raw)}`);
    } catch (err) {
      t.ok(err instanceof MembershipError);
      t.match((err as Error).message, pattern);
    }
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeSync(bytes, 1 << 20);
      } catch (err) {
        if (!(err instanceof MembershipError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
  t.throws(() => decodeSync(new Uint8Array(100), 50), /exceed/);
});
