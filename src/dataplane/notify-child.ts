/**
 * The notification helper: a separate Node process that listens to rtnetlink change
 * notifications and forwards them, decoded, to its parent (`NetlinkKernel`) over IPC.
 *
 * Why a process: with the `netlink` package, a receive-buffer overflow (ENOBUFS) on a socket is
 * a native exception that aborts the whole process with no JavaScript hook (measured: a
 * 20,000-route flood against an 8 MiB buffer). Here it kills only this helper; the parent sees
 * the exit, resyncs and starts a new one.
 *
 * Keeping up matters more than anything else here: a helper that falls behind overflows, and
 * every overflow costs the parent a full resync. So messages are read straight off the raw
 * socket, and the echoes of the parent's own requests (the kernel stamps a notification with the
 * port of the request that caused it) are skipped on their header alone, before any decoding:
 * during a full program they are nearly all the traffic.
 *
 * argv[2]: receive buffer size in bytes; argv[3]: the parent's request socket port.
 */
import { RawNetlinkSocket } from './netlink-lib.js';
import { decodeEvent, RTNLGRP } from './netlink-codec.js';
import type { KernelEvent } from './types.js';

const NLMSG_HDRLEN = 16;
const recvBufferSize = Number(process.argv[2] ?? 8 << 20);
const ownPort = Number(process.argv[3] ?? -1);
const sock = new RawNetlinkSocket(0, { recvBufferSize: Number.isFinite(recvBufferSize) ? recvBufferSize : 8 << 20, sendBufferSize: 65_536 });
let queue: KernelEvent[] = [];
let scheduled = false;
let undecodable = 0;
let echoes = 0;

const flush = (): void => {
  scheduled = false;
  if ((queue.length === 0 && undecodable === 0 && echoes === 0) || process.send === undefined) return;
  const events = queue;
  queue = [];
  process.send({ events, undecodable, echoes });
  undecodable = 0;
  echoes = 0;
};

sock.on('message', (buf: Buffer) => {
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= buf.length) {
    const length = buf.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > buf.length) {
      undecodable++;
      break;
    }
    const port = buf.readUInt32LE(offset + 12);
    if (port === ownPort) echoes++;
    else {
      try {
        const event = decodeEvent(buf.readUInt16LE(offset + 4), buf.subarray(offset + NLMSG_HDRLEN, offset + length));
        if (event !== undefined) queue.push(event);
      } catch {
        // Counted by the parent; the periodic resync covers whatever it meant.
        undecodable++;
      }
    }
    offset += (length + 3) & ~3;
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
sock.on('error', (err) => {
  process.stderr.write(`netlink notification socket error: ${err.message}\n`);
  process.exit(3);
});
for (const group of Object.values(RTNLGRP)) sock.addMembership(group);
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
