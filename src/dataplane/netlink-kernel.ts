/**
 * The real kernel backend over rtnetlink (the `netlink` package), in the network namespace of
 * the calling process.
 *
 * Requests: one socket, many messages per `sendmsg`. The kernel handles every message of a
 * datagram in order and acknowledges each, so 10,000 routes cost tens of system calls instead of
 * 10,000. Acknowledgements queue on the socket while the kernel works through a datagram, and a
 * full receive queue is fatal with this package (ENOBUFS becomes a native exception that aborts
 * the process, see STACK.md), so the number of unacknowledged messages is bounded by the receive
 * buffer: `maxInFlight` acknowledgements fit with a wide margin.
 *
 * Notifications come from a separate socket in a helper process (`notify-child.ts`). A flood
 * that overflows that socket kills the helper, not the daemon; the helper's death is reported as
 * an `overflow` event (so the reconciler resyncs) and it is restarted.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { AttrStream, NetlinkSocket, RawNetlinkSocket, rt, type NetlinkMessage } from './netlink-lib.js';
import { Backoff } from '../common/index.js';
import type { Logger } from '../log/index.js';
import { KernelError } from './errors.js';
import { describeOp, type Kernel } from './kernel.js';
import { decodeAddress, decodeFdb, decodeLink, decodeNeighbour, decodeRoute, decodeRule, encodeHotInto, encodeOp, frame, HOT_MAX_BYTES, NLM_F, RTM } from './netlink-codec.js';
import type { KernelEvent, KernelLink, KernelOp, KernelSnapshot } from './types.js';

const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;

export interface NetlinkKernelOptions {
  logger?: Logger;
  /**
   * Receive buffer of the request socket in bytes. Default 4 MiB: room for thousands of
   * acknowledgements. The kernel caps it at net.core.rmem_max for unprivileged processes.
   */
  recvBufferBytes?: number;
  /** Messages per datagram. Default 256 (about 25 KiB of routes; the send limit is the socket's send buffer). */
  batchSize?: number;
  /**
   * Most unacknowledged messages. Default: the receive buffer over 2 KiB (an acknowledgement's
   * share of socket memory, with margin), at most 2,048.
   */
  maxInFlight?: number;
  /** Milliseconds before an unacknowledged request counts as failed (ETIMEDOUT). Default 10,000. */
  requestTimeoutMs?: number;
  /** Receive notifications (default true). */
  notifications?: boolean;
  /** Receive buffer of the helper's notification socket in bytes. Default 8 MiB. */
  notifyRecvBufferBytes?: number;
  /** First restart delay of a dead notification helper in milliseconds, doubling to 5 s. Default 100. */
  notifyRestartMs?: number;
}

type AckCallback = (err: Error | null, msgs?: NetlinkMessage[]) => void;

/** Exposes the package's protected request bookkeeping for batched requests. */
class RequestSocket extends NetlinkSocket {
  expect(seq: number, callback: AckCallback): void {
    this.makeRef(seq, callback);
  }

  forget(seq: number): void {
    if (this.requests.has(seq)) this.dropRef(seq);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The errno name of an acknowledgement, or undefined for success. */
function ackErrno(msgs: NetlinkMessage[] | undefined): string | undefined {
  const m = msgs?.[0];
  if (m === undefined || m.type !== NLMSG_ERROR || m.data.length < 4) return undefined;
  const errno = m.data.readInt32LE(0);
  if (errno === 0) return undefined;
  try {
    return getSystemErrorName(errno);
  } catch {
    return `errno ${-errno}`;
  }
}

export class NetlinkKernel implements Kernel {
  private readonly sock: RequestSocket;
  private readonly logger: Logger | undefined;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly requestTimeoutMs: number;
  private readonly listeners = new Set<(event: KernelEvent) => void>();
  private readonly notifyEnabled: boolean;
  private readonly notifyRecvBufferBytes: number;
  /** Restarts of a dying notification helper: notifyRestartMs doubling to 5 s, reset once one is ready. */
  private readonly helperRestart: Backoff;
  private child: ChildProcess | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private ready = deferred();
  private closed = false;
  /** Notification helper starts, for metrics. */
  helperStarts = 0;
  /** Notifications dropped as echoes of this process's own requests. */
  echoesDropped = 0;
  /** Notifications the helper could not decode (dropped; the periodic resync covers them). */
  undecodableNotifications = 0;

  constructor(options: NetlinkKernelOptions = {}) {
    this.logger = options.logger;
    const recvBufferSize = options.recvBufferBytes ?? 4 << 20;
    this.sock = new RequestSocket(new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize, sendBufferSize: 1 << 20 }));
    this.sock.on('error', (err) => this.logger?.warn({ err }, 'netlink request socket error'));
    this.batchSize = options.batchSize ?? 256;
    const granted = this.sock.getRecvBufferSize();
    this.maxInFlight = Math.max(1, options.maxInFlight ?? Math.min(2048, Math.floor(granted / 2048)));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.notifyEnabled = options.notifications ?? true;
    this.notifyRecvBufferBytes = options.notifyRecvBufferBytes ?? 8 << 20;
    this.helperRestart = new Backoff({ initialMs: options.notifyRestartMs ?? 100, maxMs: Math.max(options.notifyRestartMs ?? 100, 5000) });
    this.sock.unref();
  }

  /** Effective bound on unacknowledged requests. */
  get inFlightLimit(): number {
    return this.maxInFlight;
  }

  async snapshot(): Promise<KernelSnapshot> {
    const links = await this.listLinks();
    const addresses = (await this.dump(RTM.GETADDR, (o) => rt.formatAddressMessage({ kind: 'address', data: {}, attrs: {} }, o)))
      .flatMap((m) => (m.kind === 'address' ? [decodeAddress(m)] : []))
      .filter((x) => x !== undefined);
    const routes = (await this.dump(RTM.GETROUTE, (o) => rt.formatRouteMessage({ kind: 'route', data: {}, attrs: {} }, o)))
      .flatMap((m) => (m.kind === 'route' ? [decodeRoute(m)] : []))
      .filter((x) => x !== undefined);
    const neighbours = (await this.dump(RTM.GETNEIGH, (o) => rt.formatNeighborMessage({ kind: 'neighbor', data: {}, attrs: {} }, o)))
      .flatMap((m) => (m.kind === 'neighbor' ? [decodeNeighbour(m)] : []))
      .filter((x) => x !== undefined);
    const fdb = (await this.dump(RTM.GETNEIGH, (o) => rt.formatNeighborMessage({ kind: 'neighbor', data: { family: 7 }, attrs: {} }, o)))
      .flatMap((m) => (m.kind === 'neighbor' ? [decodeFdb(m)] : []))
      .filter((x) => x !== undefined);
    const rules = (await this.dump(RTM.GETRULE, (o) => rt.formatRuleMessage({ kind: 'rule', data: {}, attrs: {} }, o)))
      .flatMap((m) => (m.kind === 'rule' ? [decodeRule(m)] : []))
      .filter((x) => x !== undefined);
    return { links, addresses, routes, neighbours, fdb, rules };
  }

  async listLinks(): Promise<KernelLink[]> {
    const msgs = await this.dump(RTM.GETLINK, (o) => rt.formatLinkMessage({ kind: 'link', data: {}, attrs: {} }, o));
    return msgs.flatMap((m) => (m.kind === 'link' ? [decodeLink(m)] : [])).filter((x) => x !== undefined);
  }

  execute(ops: readonly KernelOp[]): Promise<(KernelError | undefined)[]> {
    this.checkOpen();
    const results: (KernelError | undefined)[] = new Array(ops.length).fill(undefined);
    if (ops.length === 0) return Promise.resolve(results);
    return new Promise((resolve) => {
      let next = 0;
      let inFlight = 0;
      let done = 0;
      const finish = (index: number, err: KernelError | undefined): void => {
        results[index] = err;
        inFlight--;
        done++;
        if (done === ops.length) resolve(results);
        else pump();
      };
      const pump = (): void => {
        while (next < ops.length) {
          const count = Math.min(this.batchSize, ops.length - next);
          if (inFlight > 0 && this.maxInFlight - inFlight < count) return;
          const start = next;
          next += count;
          inFlight += count;
          this.sendBatch(ops, start, count, finish);
        }
      };
      pump();
    });
  }

  subscribe(listener: (event: KernelEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.notifyEnabled && this.child === undefined && this.restartTimer === undefined) this.startHelper();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.stopHelper();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.stopHelper();
    // A helper stopped earlier (the last listener left, as the reconciler's stop does) may
    // still be exiting.
    await Promise.all(this.helperExits);
    this.sock.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new KernelError('EBADF', 'use of a closed netlink kernel');
  }

  /**
   * Sends `count` operations from `start` as one datagram. Only the last message asks for an
   * acknowledgement: the kernel answers a message without NLM_F_ACK only when it fails, and it
   * handles a datagram's messages in order, so when the last one is acknowledged every earlier
   * one without an error reply has succeeded. That turns 30,000 acknowledgements of a full
   * program into about a hundred, and keeps the receive queue nearly empty.
   */
  private sendBatch(ops: readonly KernelOp[], start: number, count: number, finish: (index: number, err: KernelError | undefined) => void): void {
    const port = this.sock.address().port;
    let out = Buffer.allocUnsafe(count * HOT_MAX_BYTES + 1024);
    let offset = 0;
    let lastHeader = -1;
    const seqs: number[] = [];
    const indexOf = new Map<number, number>();
    for (let i = start; i < start + count; i++) {
      const op = ops[i] as KernelOp;
      const seq = this.sock.generateSeq();
      if (out.length - offset < HOT_MAX_BYTES) out = Buffer.concat([out.subarray(0, offset), Buffer.allocUnsafe(out.length)]);
      let written = encodeHotInto(op, out, offset, seq, port, 0);
      if (written === 0) {
        try {
          const f = frame(encodeOp(op), seq, port, false);
          if (out.length - offset < f.length) out = Buffer.concat([out.subarray(0, offset), Buffer.allocUnsafe(out.length + f.length)]);
          f.copy(out, offset);
          written = f.length;
        } catch {
          written = -1;
        }
      }
      if (written < 0) {
        // Only malformed operations get here (the reconciler validates its inputs first).
        queueMicrotask(() => finish(i, new KernelError('EINVAL', `${describeOp(op)}: not encodable`)));
        continue;
      }
      lastHeader = offset;
      offset += written;
      seqs.push(seq);
      indexOf.set(seq, i);
    }
    if (seqs.length === 0) return;
    out.writeUInt16LE(out.readUInt16LE(lastHeader + 6) | NLM_F.ACK, lastHeader + 6);
    const lastSeq = seqs[seqs.length - 1] as number;
    let open = true;
    const close = (outcome: (seq: number, index: number) => KernelError | undefined): void => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      for (const seq of seqs) {
        if (!indexOf.has(seq)) continue;
        this.sock.forget(seq);
        const index = indexOf.get(seq) as number;
        indexOf.delete(seq);
        finish(index, outcome(seq, index));
      }
    };
    const timer = setTimeout(() => close((_, index) => new KernelError('ETIMEDOUT', describeOp(ops[index] as KernelOp))), this.requestTimeoutMs);
    for (const seq of seqs) {
      this.sock.expect(seq, (err, msgs) => {
        const index = indexOf.get(seq);
        if (index === undefined) return;
        const errno = err !== null ? 'EIO' : ackErrno(msgs);
        if (seq === lastSeq) {
          // Everything before the last message that has not reported an error succeeded.
          const last = errno === undefined ? undefined : new KernelError(errno, describeOp(ops[index] as KernelOp));
          close((s) => (s === lastSeq ? last : undefined));
          return;
        }
        if (errno === undefined) return;
        this.sock.forget(seq);
        indexOf.delete(seq);
        finish(index, new KernelError(errno, describeOp(ops[index] as KernelOp), err === null ? undefined : { cause: err }));
      });
    }
    this.sock.socket.send(out.subarray(0, offset), {}, (error) => {
      if (error === undefined || error === null) return;
      const errno = typeof error.code === 'string' ? error.code : 'EIO';
      close(() => new KernelError(errno, `send of ${seqs.length} requests`, { cause: error }));
    });
  }

  private async dump(type: number, write: (out: AttrStream) => void): Promise<rt.Message[]> {
    this.checkOpen();
    const out = new AttrStream();
    write(out);
    try {
      const [msgs] = await this.sock.request(type, out.bufs as Uint8Array[], { flags: NLM_F.DUMP, timeout: this.requestTimeoutMs });
      const parsed: rt.Message[] = [];
      for (const m of msgs) {
        try {
          parsed.push(rt.parseMessage(m.type as rt.MessageType, m.data));
        } catch (err) {
          this.logger?.warn({ err, type: m.type }, 'unparsable netlink dump message skipped');
        }
      }
      return parsed;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new KernelError(/Timeout/.test(message) ? 'ETIMEDOUT' : (/\b(E[A-Z0-9]{2,15})\b/.exec(message)?.[1] ?? 'EIO'), `dump of message type ${type}`, { cause: err });
    }
  }

  private emit(event: KernelEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private startHelper(): void {
    if (this.closed) return;
    const here = import.meta.url;
    // Beside a bundle the helper is CommonJS (notify-child.cjs, tools/bundle.mjs): an ES module
    // entry cost every helper start ~60 ms of CPU more in Node's module loader (0.17-0.19 s vs
    // 0.11-0.12 s, measured here), paid once per agent start, when CPU is scarcest. Beside tsc's
    // output or the sources it is the module with this file's extension.
    const bundled = new URL('./notify-child.cjs', here);
    const script = fileURLToPath(existsSync(bundled) ? bundled : new URL(`./notify-child${here.endsWith('.ts') ? '.ts' : '.js'}`, here));
    const child = fork(script, [String(this.notifyRecvBufferBytes), String(this.sock.address().port)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    this.helperStarts++;
    if (this.helperStarts > 1) this.ready = deferred();
    const readiness = this.ready;
    let ready = false;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.on('message', (message: { ready?: true; events?: KernelEvent[]; echoes?: number; undecodable?: number }) => {
      if (message.ready === true) {
        ready = true;
        this.helperRestart.reset();
        readiness.resolve();
        // Anything that changed before the helper listened is unknown: resync.
        if (this.helperStarts > 1) this.emit({ type: 'overflow', reason: 'notification helper restarted' });
        return;
      }
      if ((message.undecodable ?? 0) > 0) {
        this.undecodableNotifications += message.undecodable as number;
        this.logger?.warn({ count: message.undecodable }, 'undecodable netlink notifications dropped');
      }
      // Echoes of this process's own requests were skipped by the helper: each acknowledgement
      // already updated the reconciler's view, and a late echo would resurrect old state.
      this.echoesDropped += message.echoes ?? 0;
      for (const event of message.events ?? []) this.emit(event);
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.closed || this.listeners.size === 0) return;
      this.logger?.warn({ code, signal, ready, stderr: stderr.trim().split('\n').slice(-3).join(' | ') }, 'netlink notification helper died; notifications lost, resyncing');
      this.emit({ type: 'overflow', reason: `notification helper exited (${signal ?? code})` });
      const delay = this.helperRestart.next();
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.listeners.size > 0) this.startHelper();
      }, delay);
      this.restartTimer.unref();
    });
    child.unref();
    child.channel?.unref();
  }

  /**
   * Stops the helper and resolves once it has exited (SIGTERM, then SIGKILL after 2 s). Closing
   * used to return as soon as the signal was sent: a daemon whose start failed, or that had just
   * stopped, still had the helper as a child process for a moment (seen in the kernel test of
   * the component contract).
   */
  private stopHelper(): Promise<void> {
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      const giveUp = setTimeout(done, 4000);
      const helperExits = this.helperExits;
      function done(): void {
        clearTimeout(kill);
        clearTimeout(giveUp);
        helperExits.delete(exited);
        resolve();
      }
      child.once('exit', done);
      child.kill('SIGTERM');
    });
    this.helperExits.add(exited);
    return exited;
  }

  /** Helpers signalled to stop that have not exited yet. */
  private readonly helperExits = new Set<Promise<void>>();

  /** Test hook: the helper's pid (undefined while none runs). */
  get helperPid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves once a notification helper has subscribed (for tests and the bench). */
  async helperReady(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KernelError('ETIMEDOUT', 'notification helper start')), timeoutMs);
    });
    try {
      await Promise.race([this.ready.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
