/**
 * The daemon's HTTP API (JSON; errors as `{ code, message }` with a fitting status), on
 * 127.0.0.1:62080 by default. Read-only except `POST /v1/allocations/{agent}/release`.
 *
 *   GET  /v1/status                      name, role, members by state, lease or Raft role, dataplane health
 *   GET  /v1/members                     every member with its decoded metadata
 *   GET  /v1/kv/{key}                    a store value; `?watch=1` streams changes (server-sent events)
 *   GET  /v1/routes                      desired vs programmed (drift, waiting, conflicts, stale), counters (agents)
 *   GET  /v1/allocations                 every lease (masters) or this agent's lease
 *   POST /v1/allocations/{agent}/release frees a stopped agent's allocation and removes its entries
 *                                        (masters; refused while it may run, unless ?force=1)
 *   GET  /v1/overlay/{network}/usage     used and free blocks per network, per agent (masters)
 *   POST /v1/leave                       leave the cluster gracefully and stop
 *   GET  /metrics                        Prometheus text format
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeMeta } from '../membership/index.js';
import type { Logger } from '../log/index.js';
import type { Daemon } from './daemon.js';
import { cniUsageKey } from './keys.js';
import { renderMetrics } from './metrics.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  logger?: Logger;
}

export interface ApiStats {
  requests: number;
  /** Requests answered with a 4xx status (bad input). */
  clientErrors: number;
  serverErrors: number;
  watchers: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_KEY_LENGTH = 512;

export class ApiServer {
  readonly stats: ApiStats = { requests: 0, clientErrors: 0, serverErrors: 0, watchers: 0 };
  private readonly server: Server;
  private daemon: Daemon | undefined;
  private readonly closers = new Set<() => void>();

  constructor(private readonly options: ApiServerOptions) {
    this.server = createServer((req, res) => {
      this.stats.requests++;
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
  }

  attach(daemon: Daemon): void {
    this.daemon = daemon;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const close of this.closers) close();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private fail(res: ServerResponse, err: unknown): void {
    const status = err instanceof HttpError ? err.status : 500;
    if (status >= 500) {
      this.stats.serverErrors++;
      this.options.logger?.warn({ err }, 'API request failed');
    } else {
      this.stats.clientErrors++;
      // Debug, not warn: a scraper probing paths must not flood the log; the counter shows it.
      this.options.logger?.debug({ status, err: err instanceof Error ? err.message : String(err) }, 'API request refused');
    }
    const code = err instanceof HttpError ? err.code : ((err as { code?: string }).code ?? 'LASHUP_ERR_INTERNAL');
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ code, message: err instanceof Error ? err.message : String(err) })}\n`);
    } else res.end();
  }

  private json(res: ServerResponse, value: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(value, null, 2)}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const d = this.daemon;
    if (d === undefined) throw new HttpError(503, 'LASHUP_ERR_NOT_READY', 'the daemon is starting');
    const url = new URL(req.url ?? '/', 'http://localhost');
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      // A malformed percent-escape is bad input, not a server error: it once answered 500 and
      // logged a stack trace per request (megabytes per second from one local client).
      throw new HttpError(400, 'LASHUP_ERR_BAD_REQUEST', `the path ${JSON.stringify(url.pathname.slice(0, 80))} has a malformed percent-escape; escape "%" as %25`);
    }
    const method = req.method ?? 'GET';
    const route = `${method} /${parts.map((p, i) => (i >= 2 && parts[0] === 'v1' ? ':' : p)).join('/')}`;
    switch (route) {
      case 'GET /v1/status':
        return this.json(res, this.status(d));
      case 'GET /v1/members':
        return this.json(res, this.members(d));
      case 'GET /v1/kv/:':
        return this.kv(d, parts[2] as string, url.searchParams.get('watch') === '1', req, res);
      case 'GET /v1/routes':
        if (d.reconciler === undefined) throw new HttpError(404, 'LASHUP_ERR_NO_DATAPLANE', `${d.config.name} is a ${d.config.role} without a dataplane; ask an agent`);
        return this.json(res, { entries: d.reconciler.routeReport(), stats: d.reconciler.stats(), conflicts: d.reconciler.conflictReport(), overlay: d.overlayAgent?.stats, lease: d.lease });
      case 'GET /v1/allocations':
        if (d.node.allocator !== undefined) return this.json(res, { leases: d.node.allocator.state.leases() });
        return this.json(res, { lease: d.lease ?? null });
      case 'POST /v1/allocations/:/:': {
        if (parts[3] !== 'release') break;
        const agent = parts[2] as string;
        if (agent.length === 0 || agent.length > 256) throw new HttpError(400, 'LASHUP_ERR_BAD_REQUEST', `agent name ${JSON.stringify(agent.slice(0, 40))} is not valid; expected 1-256 characters`);
        if (d.node.allocator === undefined) throw new HttpError(409, 'LASHUP_ERR_NOT_MASTER', 'release runs on a master');
        const forceText = url.searchParams.get('force');
        if (forceText !== null && !['1', 'true', '0', 'false'].includes(forceText)) throw new HttpError(400, 'LASHUP_ERR_BAD_REQUEST', `force = ${JSON.stringify(forceText.slice(0, 20))} is not valid; expected 1, true, 0 or false`);
        try {
          return this.json(res, { agent, ...(await d.release(agent, { force: forceText === '1' || forceText === 'true' })) });
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'LASHUP_ERR_INTERNAL';
          throw new HttpError(code === 'LASHUP_ERR_RAFT_NOT_LEADER' ? 421 : 409, code, err instanceof Error ? err.message : String(err));
        }
      }
      case 'GET /v1/overlay/:/:': {
        if (parts[3] !== 'usage') break;
        if (d.node.allocator === undefined) throw new HttpError(409, 'LASHUP_ERR_NOT_MASTER', 'usage is answered by masters');
        const network = parts[2] as string;
        const usage = d.node.allocator.state.usage().filter((u) => u.network === network);
        if (usage.length === 0) throw new HttpError(404, 'LASHUP_ERR_UNKNOWN_NETWORK', `no overlay network ${JSON.stringify(network)}; known: ${[...new Set(d.node.allocator.state.usage().map((u) => u.network))].join(', ')}`);
        // Container addresses per agent, as the agents publish them (exhaustion before it bites).
        const containers = d.node.kv.get(cniUsageKey(network)) ?? {};
        return this.json(res, { network, families: usage.map((u) => ({ family: u.family, used: u.used, total: u.total, free: u.total - u.used, agents: u.agents })), containers });
      }
      case 'POST /v1/leave':
        if (!d.canLeave()) throw new HttpError(409, 'LASHUP_ERR_NOT_SUPPORTED', 'this daemon is embedded; stop it from its owner');
        // Answer first: leaving closes this server, and with it this connection.
        res.on('finish', () => d.requestLeave());
        return this.json(res, { leaving: true });
      case 'GET /metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metrics(d));
        return;
      default:
        break;
    }
    throw new HttpError(404, 'LASHUP_ERR_NOT_FOUND', `${method} ${url.pathname} is not an API route; see /v1/status, /v1/members, /v1/kv/{key}, /v1/routes, /v1/allocations, /v1/overlay/{network}/usage, /metrics`);
  }

  private status(d: Daemon): unknown {
    const counts: Record<string, number> = {};
    for (const m of d.node.membership.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
    const raft = d.node.allocator?.raft;
    const rec = d.reconciler?.stats();
    return {
      name: d.config.name,
      role: d.config.role,
      version: d.version,
      uptimeMs: Date.now() - d.stats.startedAtMs,
      members: counts,
      ...(raft === undefined ? {} : { raft: { role: raft.role, term: raft.term, leader: raft.leaderId ?? null } }),
      ...(d.config.role === 'agent' ? { lease: d.lease ?? null, leaseWaiting: d.node.lease?.waitingFor() ?? null } : {}),
      ...(rec === undefined ? {} : { dataplane: { converged: rec.converged, conflicts: rec.conflicts, invalid: rec.invalid, remoteAgents: d.overlayAgent?.stats.remoteAgents ?? 0, lastApplyMs: rec.lastApplyMs } }),
    };
  }

  private members(d: Daemon): unknown {
    return d.node.membership.members().map((m) => {
      const meta = decodeMeta(m.meta);
      return { name: m.name, state: m.state, incarnation: m.incarnation, address: m.address, ...(meta === undefined ? {} : { role: meta.role, underlayIp: meta.underlayIp, version: meta.version, tags: meta.tags ?? {} }) };
    });
  }

  private kv(d: Daemon, key: string, watch: boolean, req: IncomingMessage, res: ServerResponse): void {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new HttpError(400, 'LASHUP_ERR_BAD_REQUEST', `key of ${key.length} characters is not valid; expected 1-${MAX_KEY_LENGTH}`);
    if (!watch) {
      const value = d.node.kv.get(key);
      if (value === undefined) throw new HttpError(404, 'LASHUP_ERR_NO_SUCH_KEY', `no key ${JSON.stringify(key)}`);
      return this.json(res, { key, value });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.stats.watchers++;
    const unsubscribe = d.node.kv.subscribe(
      (k) => k === key,
      (change) => res.write(`event: ${change.new === undefined ? 'removed' : 'value'}\ndata: ${JSON.stringify({ key: change.key, value: change.new ?? null, initial: change.initial })}\n\n`),
    );
    const close = (): void => {
      if (!this.closers.delete(close)) return;
      this.stats.watchers--;
      unsubscribe();
      res.end();
    };
    this.closers.add(close);
    req.on('close', close);
  }

  private metrics(d: Daemon): string {
    return renderMetrics({
      membership: d.node.membership.stats,
      udp: d.node.udp?.stats,
      libp2p: d.node.libp2p.stats,
      kv: d.node.kv.stats,
      anti_entropy: d.node.antiEntropy.stats,
      peers: d.node.peers.stats,
      node: d.node.stats,
      allocator: d.node.allocator?.stats,
      lease: d.node.lease?.stats,
      dataplane: d.reconciler?.stats(),
      overlay: d.overlayAgent?.stats,
      cni: d.cni?.stats,
      cni_conflist: d.conflists?.stats,
      daemon: d.stats,
      api: this.stats,
    });
  }
}
