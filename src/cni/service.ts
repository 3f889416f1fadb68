/**
 * The daemon side of `lashup-ipam`: a unix socket server answering the plugin, over the
 * ContainerPool, with every change written to disk (temp file, fsync, rename, directory fsync)
 * before it is answered, so leases survive restarts and a crash never hands an address out
 * twice. Requests are served one at a time (concurrent plugin invocations are safe by
 * construction).
 *
 * Invariant: a change is visible (in memory, in answers) only once it is durable. When the
 * lease file cannot be written, the change is rolled back before the error is answered. (A past
 * bug: a failed write left an ADD in memory; the runtime's retry found it and answered "ok"
 * without writing, so after a restart the container's address went to the next container.)
 *
 * Protocol: one JSON object per line each way; every request line gets one reply line, in
 * order; the server closes the connection once the client has half-closed and every reply is
 * written. Request `{ op: "add"|"del"|"check"|"gc"|"status", network, containerId, ifname,
 * netns?, task?, framework?, vips?, valid? }`; reply `{ ok: true, attachment?, dns?, removed? }` or
 * `{ ok: false, error: { code, cniCode, message, details } }`.
 */
import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { LashupError, RealClock, type Clock, type TimerHandle } from '../common/index.js';
import { MAX_TASK_VIPS } from '../keyspace/index.js';
import type { Logger } from '../log/index.js';
import { removeStaleSocket } from '../net/index.js';
import { NodeFs, writeFileAtomic, type StorageFs } from '../storage/index.js';
import { CniCode, CniError, CniErrorCode } from './errors.js';
import { ContainerPool, type Attachment, type NetworkRange } from './pool.js';
import { TASK_NAME, type TaskName } from './task-name.js';

export interface CniServiceOptions {
  agent: string;
  socketPath: string;
  /** File of the leases (JSON). */
  leasesPath: string;
  logger?: Logger;
  /** File operations for the lease file. Default: the real file system (tests inject failures). */
  fs?: StorageFs;
  /** Time: lease creation stamps (wall clock) and the sweep timer. Default the system clock. */
  clock?: Clock;
  /** The resolvers a container on `network` should use (the DNS server on its gateway), named in ADD results. */
  resolvers?: (network: string) => string[];
  /** Checks one VIP declaration of an ADD against the cluster (throws a LashupError naming it); the daemon's checks ranges too. */
  checkVip?: (text: string) => void;
}

export interface CniStats {
  adds: number;
  dels: number;
  checks: number;
  gcCollected: number;
  /** ADDs refused because the network's half was full. */
  exhausted: number;
  /** Requests refused as malformed. */
  badRequests: number;
  notReady: number;
  /** Lease file writes that failed (the change was rolled back and the request refused). */
  persistFailures: number;
  /** Sweeps that kept a lease because its network namespace could not be examined (not ENOENT). */
  sweepUncertain: number;
}

/** Longest request line, in bytes: requests are a few hundred bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** A connection idle this long is closed (a plugin answers within its own 10 s limit). */
const IDLE_TIMEOUT_MS = 30_000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

const describe = (v: unknown): string => (v === undefined ? '(missing)' : (JSON.stringify(v)?.slice(0, 80) ?? String(v)));

/**
 * The `valid` list of a GC request: every entry an object with a well-formed containerId and
 * ifname. Anything else is refused as a whole, because "no valid attachments" would free every
 * address of the network while its containers still run (a past bug: a missing or string-valued
 * list was read as empty).
 */
function parseValidList(value: unknown): { containerId: string; ifname: string }[] {
  if (!Array.isArray(value)) {
    throw new CniError(
      CniErrorCode.BadRequest,
      CniCode.InvalidConfig,
      `valid = ${describe(value)} is not valid; GC needs the list of attachments still in use (cni.dev/valid-attachments), possibly empty`,
      { field: 'valid' },
    );
  }
  return value.map((entry: unknown, i) => {
    const e = entry as { containerId?: unknown; ifname?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.containerId !== 'string' || !ID.test(e.containerId) || typeof e.ifname !== 'string' || e.ifname.length === 0 || e.ifname.length > 15) {
      throw new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, `valid[${i}] = ${describe(entry)} is not valid; expected { containerId, ifname }`, { field: `valid[${i}]` });
    }
    return { containerId: e.containerId, ifname: e.ifname };
  });
}

/**
 * The optional task name of an add request (both parts or neither, each as TASK_NAME allows),
 * with the VIPs it declares, each checked by `checkVip` (throws a LashupError naming the value).
 */
function taskName(req: Record<string, unknown>, checkVip: ((text: string) => void) | undefined): TaskName | undefined {
  const { task, framework, vips } = req;
  if (vips !== undefined) {
    const bad = (code: string, message: string): CniError => new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, message, { field: 'vips', vipCode: code });
    if (!Array.isArray(vips) || vips.length > MAX_TASK_VIPS || !vips.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 200))
      throw bad('LASHUP_ERR_VIP_INVALID', `vips = ${describe(vips)} is not valid; expected up to ${MAX_TASK_VIPS} VIP declarations like "/web:80"`);
    if (task === undefined) throw bad('LASHUP_ERR_VIP_INVALID', 'vips are given without a task name; a VIP belongs to a task');
    for (const v of vips as string[]) {
      try {
        checkVip?.(v);
      } catch (err) {
        if (err instanceof LashupError) throw bad(err.code, err.message);
        throw err;
      }
    }
  }
  if (task === undefined && framework === undefined) return undefined;
  for (const [name, v] of [
    ['task', task],
    ['framework', framework],
  ] as const) {
    if (typeof v !== 'string' || !TASK_NAME.test(v))
      throw new CniError(
        CniErrorCode.BadRequest,
        CniCode.InvalidConfig,
        `${name} = ${describe(v)} is not valid; expected 1-63 letters, digits, ".", "_" or "-" (task and framework both, or neither)`,
        {
          field: name,
        },
      );
  }
  const list = vips as string[] | undefined;
  return { task: task as string, framework: framework as string, ...(list === undefined || list.length === 0 ? {} : { vips: list }) };
}

export class CniService {
  readonly stats: CniStats = { adds: 0, dels: 0, checks: 0, gcCollected: 0, exhausted: 0, badRequests: 0, notReady: 0, persistFailures: 0, sweepUncertain: 0 };
  readonly pool: ContainerPool;
  private readonly fs: StorageFs;
  private server: Server | undefined;
  private ready = false;
  private queue: Promise<void> = Promise.resolve();
  private sweepTimer: TimerHandle | undefined;
  private readonly clock: Clock;
  /** Namespace paths whose examination failed, already logged (logged once each). */
  private readonly uncertainLogged = new Set<string>();
  /** Called after every change of the attachments (the daemon publishes usage). */
  onChange: (() => void) | undefined;

  constructor(private readonly options: CniServiceOptions) {
    this.fs = options.fs ?? new NodeFs();
    // Unreferenced timers: the sweep alone must not keep a process alive (the socket does).
    this.clock = options.clock ?? new RealClock(true);
    let initial: Attachment[] = [];
    const bytes = this.fs.read(options.leasesPath);
    if (bytes !== undefined) {
      try {
        const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { attachments?: Attachment[] };
        initial = Array.isArray(parsed.attachments) ? parsed.attachments : [];
      } catch (err) {
        // A corrupt file would otherwise let addresses be handed out twice: refuse to start.
        throw new CniError(
          CniErrorCode.BadRequest,
          CniCode.IoFailure,
          `${options.leasesPath} is not readable JSON (${(err as Error).message}); restore it, or remove it once no container uses lashup addresses`,
          { path: options.leasesPath },
        );
      }
    }
    this.pool = new ContainerPool(options.agent, initial);
  }

  /** The lease's Mesos halves; until the first call, ADD answers "try again later". */
  setRanges(ranges: Record<string, NetworkRange>): void {
    this.pool.setRanges(ranges);
    this.ready = true;
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.options.socketPath), { recursive: true, mode: 0o755 });
    await removeStaleSocket(this.options.socketPath);
    // Half-open: a client writes its request and half-closes; the reply still goes back.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(this.options.socketPath, () => resolve());
    });
    // Whoever may connect may take and free container addresses: root only, whatever the umask
    // (0755 under the usual umask already kept others out; a umask of 0 let every user in).
    chmodSync(this.options.socketPath, 0o600);
  }

  /**
   * Whether a container's network namespace is gone. Only "does not exist" (ENOENT) counts: a
   * namespace that cannot be examined (EACCES on /proc/<pid>/ns/net, say) may well be in use,
   * and collecting its lease would hand a running container's address to the next one (a past
   * bug). Such leases are kept and the path is logged once.
   */
  netnsGone(path: string): boolean {
    try {
      statSync(path);
      this.uncertainLogged.delete(path);
      return false;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown';
      if (code === 'ENOENT') return true;
      this.stats.sweepUncertain++;
      if (!this.uncertainLogged.has(path)) {
        this.uncertainLogged.add(path);
        this.options.logger?.warn({ netns: path, errno: code }, 'cannot examine a container network namespace; its lease is kept');
      }
      return false;
    }
  }

  /**
   * Collects leases of containers whose network namespace no longer exists (a runtime that
   * crashed before DEL, a node that never runs GC), older than `graceMs`. Returns how many.
   */
  sweep(gone: (netns: string) => boolean = (p) => this.netnsGone(p), graceMs = 5 * 60_000): number {
    const removed = this.pool.sweep(gone, this.clock.wallMs(), graceMs);
    if (removed.length === 0) return 0;
    try {
      this.persist();
    } catch (err) {
      this.pool.restore(removed);
      this.options.logger?.error({ err: (err as Error).message }, 'leases of vanished containers kept: the lease file cannot be written');
      return 0;
    }
    this.onChange?.();
    this.stats.gcCollected += removed.length;
    for (const a of removed) if (a.netns !== undefined) this.uncertainLogged.delete(a.netns);
    this.options.logger?.info({ collected: removed.map((a) => `${a.containerId}/${a.ifname} ${a.address}`) }, 'collected leases of containers that no longer exist');
    return removed.length;
  }

  /** Sweeps every `intervalMs` until closed. */
  startSweeping(intervalMs = 60_000): void {
    const tick = (): void => {
      this.queue = this.queue.then(() => {
        this.sweep();
      });
      this.sweepTimer = this.clock.setTimer(intervalMs, tick);
    };
    this.sweepTimer = this.clock.setTimer(intervalMs, tick);
  }

  async close(): Promise<void> {
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
    await this.queue;
    if (existsSync(this.options.socketPath)) rmSync(this.options.socketPath, { force: true });
  }

  private serve(socket: Socket): void {
    let buffer = '';
    let pending = 0;
    let clientEnded = false;
    let refused = false;
    socket.setEncoding('utf8');
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const endIfDone = (): void => {
      if (clientEnded && pending === 0 && !socket.destroyed) socket.end();
    };
    const reply = (value: Record<string, unknown>): void => {
      if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(value)}\n`);
    };
    const enqueue = (work: () => void): void => {
      pending++;
      this.queue = this.queue.then(() => {
        work();
        pending--;
        endIfDone();
      });
    };
    socket.on('end', () => {
      clientEnded = true;
      endIfDone();
    });
    socket.on('data', (chunk: string) => {
      if (refused) return;
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0 && !refused; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) refused = true;
        else if (line.trim() !== '') enqueue(() => reply(this.handle(line)));
      }
      if (refused || Buffer.byteLength(buffer) > MAX_REQUEST_BYTES) {
        // Counted once per connection: everything after an oversize request is ignored.
        refused = true;
        buffer = '';
        this.stats.badRequests++;
        this.options.logger?.debug({ limitBytes: MAX_REQUEST_BYTES }, 'oversize CNI request refused');
        enqueue(() => {
          reply({ ok: false, error: { code: CniErrorCode.BadRequest, cniCode: CniCode.DecodeFailure, message: `request longer than ${MAX_REQUEST_BYTES} bytes`, details: {} } });
          clientEnded = true;
        });
      }
    });
  }

  /** One request (exposed for tests); never throws. */
  handle(line: string): Record<string, unknown> {
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new CniError(CniErrorCode.BadRequest, CniCode.DecodeFailure, 'the request is not JSON');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new CniError(CniErrorCode.BadRequest, CniCode.DecodeFailure, `the request ${describe(parsed)} is not a JSON object`);
      const req = parsed as Record<string, unknown>;
      const field = (name: string): string => {
        const v = req[name];
        if (typeof v !== 'string' || !ID.test(v))
          throw new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, `${name} = ${describe(v)} is not valid; expected 1-255 letters, digits, "_", "." or "-"`, { field: name });
        return v;
      };
      const op = req['op'];
      if (op === 'status') return { ok: true, ready: this.ready, networks: this.pool.networks() };
      const network = field('network');
      if (op === 'gc') {
        const valid = parseValidList(req['valid']);
        const removed = this.pool.gc(network, valid);
        if (removed.length > 0) this.durably(() => this.pool.restore(removed));
        this.stats.gcCollected += removed.length;
        return { ok: true, removed: removed.length };
      }
      const containerId = field('containerId');
      const ifname = field('ifname');
      switch (op) {
        case 'add': {
          if (!this.ready) {
            this.stats.notReady++;
            throw new CniError(CniErrorCode.NotReady, CniCode.TryAgainLater, `agent ${this.options.agent} has no lease yet; try again later`);
          }
          try {
            const netns = typeof req['netns'] === 'string' && req['netns'].startsWith('/') && req['netns'].length < 4096 ? req['netns'] : undefined;
            const { attachment, created } = this.pool.add(network, containerId, ifname, this.clock.wallMs(), netns, taskName(req, this.options.checkVip));
            if (created) this.durably(() => this.pool.del(network, containerId, ifname));
            this.stats.adds++;
            const nameservers = this.options.resolvers?.(network) ?? [];
            return { ok: true, attachment, ...(nameservers.length > 0 ? { dns: { nameservers } } : {}) };
          } catch (err) {
            if (err instanceof CniError && err.code === CniErrorCode.Exhausted) {
              this.stats.exhausted++;
              this.options.logger?.warn({ details: err.details }, err.message);
            }
            throw err;
          }
        }
        case 'del': {
          const existing = this.pool.get(network, containerId, ifname);
          if (existing !== undefined && this.pool.del(network, containerId, ifname)) this.durably(() => this.pool.restore([existing]));
          this.stats.dels++;
          return { ok: true };
        }
        case 'check': {
          this.stats.checks++;
          const attachment = this.pool.get(network, containerId, ifname);
          if (attachment === undefined)
            throw new CniError(CniErrorCode.UnknownContainer, CniCode.UnknownContainer, `no address for container ${containerId} interface ${ifname} on ${network}`, { containerId, ifname });
          return { ok: true, attachment };
        }
        default:
          throw new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, `op ${describe(op)} is not valid; expected add, del, check, gc or status`);
      }
    } catch (err) {
      if (err instanceof CniError) {
        if (err.code === CniErrorCode.BadRequest) {
          this.stats.badRequests++;
          this.options.logger?.warn({ err: err.message, details: err.details }, 'malformed CNI request refused');
        }
        return { ok: false, error: { code: err.code, cniCode: err.cniCode, message: err.message, details: err.details } };
      }
      return { ok: false, error: { code: 'LASHUP_ERR_INTERNAL', cniCode: CniCode.IoFailure, message: err instanceof Error ? err.message : String(err), details: {} } };
    }
  }

  /** Writes the leases; when that fails, runs `rollback` and throws LASHUP_ERR_CNI_PERSIST_FAILED. */
  private durably(rollback: () => void): void {
    try {
      this.persist();
    } catch (err) {
      rollback();
      this.stats.persistFailures++;
      const errno = (err as { details?: { errno?: unknown } }).details?.errno ?? (err as { code?: unknown }).code ?? 'unknown';
      const message = `the container leases cannot be written to ${this.options.leasesPath} (${String(errno)}); nothing was changed, retry once the data directory is writable`;
      this.options.logger?.error({ err: (err as Error).message }, message);
      throw new CniError(CniErrorCode.PersistFailed, CniCode.IoFailure, message, { path: this.options.leasesPath, errno: String(errno) });
    }
    this.onChange?.();
  }

  /** Replaces the lease file atomically and durably (temp file, fsync, rename, directory fsync). */
  private persist(): void {
    writeFileAtomic(this.fs, this.options.leasesPath, `${JSON.stringify({ version: 1, attachments: this.pool.list() }, null, 1)}\n`);
  }
}
