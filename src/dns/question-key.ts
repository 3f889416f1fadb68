/**
 * The cache key of a plain query, read from its bytes without decoding it (pure): what lets the
 * server answer a repeated question with no allocation beyond the reply's copy.
 *
 * Not a codec: it recognises only the plainest shape (a standard query, one question, no other
 * records, an uncompressed name, nothing after the question) and returns undefined for every
 * other message, which then goes through dns-packet like any message. So hostile input never
 * meets this code on a path where it could matter: a message it accepts decodes to exactly the
 * question it keys, and anything else is the library's to judge.
 */

/** `<RD bit><the question's bytes as latin1>` for a plain query; undefined otherwise. */
export function plainQuestionKey(msg: Buffer): string | undefined {
  if (msg.length < 17 || msg.length > 12 + 255 + 4) return undefined;
  const flags = msg.readUInt16BE(2);
  // QR 0 (a query), opcode 0 (QUERY), no TC; one question and nothing else (an OPT record, EDNS,
  // changes what the client accepts: such queries take the decoded path).
  if ((flags & 0xfa00) !== 0 || msg.readUInt16BE(4) !== 1 || msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) !== 0 || msg.readUInt16BE(10) !== 0) return undefined;
  let at = 12;
  for (;;) {
    const length = msg[at];
    if (length === undefined || length > 63) return undefined;
    at += 1 + length;
    if (length === 0) break;
    if (at > msg.length) return undefined;
  }
  // QTYPE and QCLASS, and the message ends there.
  if (at + 4 !== msg.length) return undefined;
  return `${flags & 0x0100 ? '1' : '0'}${msg.toString('latin1', 12)}`;
}
