/**
 * The daemon side of `lashup-ipam`: a unix socket server answering the plugin, over the
 * ContainerPool, with every change written to disk (temp file, fsync, rename) before it is
 * answered, so leases survive restarts and a crash never hands an address out twice. Requests
 * are served one at a time (concurrent plugin invocations are safe by construction).
 *
 * Protocol: one JSON object per line each way. Request `{ op: "add"|"del"|"check"|"gc"|"status",
 * network, containerId, ifname, valid? }`; reply `{ ok: true, attachment? , removed? }` or
 * `{ ok: false, error: { code, cniCode, message, details } }`.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../log/index.js';
import { CniCode, CniError, CniErrorCode } from './errors.js';
import { ContainerPool, type Attachment, type NetworkRange } from './pool.js';

export interface CniServiceOptions {
  agent: string;
  socketPath: string;
  /** File of the leases (JSON). */
  leasesPath: string;
  logger?: Logger;
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
}

const MAX_LINE = 64 * 1024;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$/;

export class CniService {
  readonly stats: CniStats = { adds: 0, dels: 0, checks: 0, gcCollected: 0, exhausted: 0, badRequests: 0, notReady: 0 };
  readonly pool: ContainerPool;
  private server: Server | undefined;
  private ready = false;
  private queue: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Called after every change of the attachments (the daemon publishes usage). */
  onChange: (() => void) | undefined;

  constructor(private readonly options: CniServiceOptions) {
    let initial: Attachment[] = [];
    if (existsSync(options.leasesPath)) {
      try {
        const parsed = JSON.parse(readFileSync(options.leasesPath, 'utf8')) as { attachments?: Attachment[] };
        initial = Array.isArray(parsed.attachments) ? parsed.attachments : [];
      } catch (err) {
        // A corrupt file would otherwise let addresses be handed out twice: refuse to start.
        throw new CniError(CniErrorCode.BadRequest, CniCode.IoFailure, `${options.leasesPath} is not readable JSON (${(err as Error).message}); restore it, or remove it once no container uses lashup addresses`, { path: options.leasesPath });
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
    if (existsSync(this.options.socketPath)) rmSync(this.options.socketPath);
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(this.options.socketPath, () => resolve());
    });
  }

  /**
   * Collects leases of containers whose network namespace no longer exists (a runtime that
   * crashed before DEL, a node that never runs GC), older than `graceMs`. Returns how many.
   */
  sweep(gone: (netns: string) => boolean = (p) => !existsSync(p), graceMs = 5 * 60_000): number {
    const removed = this.pool.sweep(gone, Date.now(), graceMs);
    if (removed.length > 0) {
      this.stats.gcCollected += removed.length;
      this.options.logger?.info({ collected: removed.map((a) => `${a.containerId}/${a.ifname} ${a.address}`) }, 'collected leases of containers that no longer exist');
      this.persist();
    }
    return removed.length;
  }

  /** Sweeps every `intervalMs` until closed. */
  startSweeping(intervalMs = 60_000): void {
    this.sweepTimer = setInterval(() => {
      this.queue = this.queue.then(() => {
        this.sweep();
      });
    }, intervalMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
    await this.queue;
    if (existsSync(this.options.socketPath)) rmSync(this.options.socketPath, { force: true });
  }

  private serve(socket: Socket): void {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_LINE) {
        this.stats.badRequests++;
        socket.end(`${JSON.stringify({ ok: false, error: { code: CniErrorCode.BadRequest, cniCode: CniCode.DecodeFailure, message: `request longer than ${MAX_LINE} bytes`, details: {} } })}\n`);
        return;
      }
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      const line = buffer.slice(0, end);
      buffer = '';
      this.queue = this.queue.then(() => {
        const reply = this.handle(line);
        socket.end(`${JSON.stringify(reply)}\n`);
      });
    });
  }

  /** One request (exposed for tests); never throws. */
  handle(line: string): Record<string, unknown> {
    try {
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new CniError(CniErrorCode.BadRequest, CniCode.DecodeFailure, 'the request is not JSON');
      }
      const field = (name: string): string => {
        const v = req[name];
        if (typeof v !== 'string' || !ID.test(v)) throw new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, `${name} = ${JSON.stringify(v)} is not valid; expected 1-255 letters, digits, "_", "." or "-"`, { field: name });
        return v;
      };
      const op = req['op'];
      if (op === 'status') return { ok: true, ready: this.ready, networks: this.pool.networks() };
      const network = field('network');
      if (op === 'gc') {
        const valid = Array.isArray(req['valid']) ? (req['valid'] as { containerId?: unknown; ifname?: unknown }[]) : [];
        const removed = this.pool.gc(
          network,
          valid.filter((v) => typeof v.containerId === 'string' && typeof v.ifname === 'string') as { containerId: string; ifname: string }[],
        );
        this.stats.gcCollected += removed.length;
        if (removed.length > 0) this.persist();
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
            const { attachment, created } = this.pool.add(network, containerId, ifname, Date.now(), netns);
            if (created) this.persist();
            this.stats.adds++;
            return { ok: true, attachment };
          } catch (err) {
            if (err instanceof CniError && err.code === CniErrorCode.Exhausted) {
              this.stats.exhausted++;
              this.options.logger?.warn({ details: err.details }, err.message);
            }
            throw err;
          }
        }
        case 'del': {
          if (this.pool.del(network, containerId, ifname)) this.persist();
          this.stats.dels++;
          return { ok: true };
        }
        case 'check': {
          this.stats.checks++;
          const attachment = this.pool.get(network, containerId, ifname);
          if (attachment === undefined) throw new CniError(CniErrorCode.UnknownContainer, CniCode.UnknownContainer, `no address for container ${containerId} interface ${ifname} on ${network}`, { containerId, ifname });
          return { ok: true, attachment };
        }
        default:
          throw new CniError(CniErrorCode.BadRequest, CniCode.InvalidConfig, `op ${JSON.stringify(op)} is not valid; expected add, del, check, gc or status`);
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

  private persist(): void {
    const path = this.options.leasesPath;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(`${path}.tmp`, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ version: 1, attachments: this.pool.list() }, null, 1)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.tmp`, path);
    this.onChange?.();
  }
}
