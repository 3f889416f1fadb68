/**
 * The daemon's HTTP API (JSON; errors as `{ code, message }` with the status their type carries),
 * on 127.0.0.1:62080 by default. Read-only except release, leave and the task records.
 *
 *   GET  /v1/status                      name, role, members by state, lease or Raft role, dataplane health
 *   GET  /v1/members                     every member with its decoded metadata
 *   GET  /v1/kv/{key}                    a store value (keys may hold "/"); `?watch=1` streams changes (server-sent events)
 *   GET  /v1/routes                      desired vs programmed (drift, waiting, conflicts, stale), counters (agents)
 *   GET  /v1/allocations                 every lease (masters) or this agent's lease
 *   POST /v1/allocations/{agent}/release frees a stopped agent's allocation and removes its entries
 *                                        (masters; refused while it may run, unless ?force=1)
 *   GET  /v1/overlay/{network}/usage     used and free blocks per network, per agent (masters)
 *   POST /v1/leave                       leave the cluster gracefully and stop
 *   GET  /v1/firewall                    the nftables rules lashup keeps, with counters (a component's route)
 *   GET  /v1/policy                      isolation policies, rules and drop counters (firewall component)
 *   GET  /v1/docker                      the agent's Docker networks and conflicts (docker component)
 *   GET  /v1/tasks                       every agent's task records (dns component)
 *   PUT|DELETE /v1/tasks/{fw}/{task}     this agent's task records, `?ip=` addresses (dns component)
 *   GET  /v1/dns?name=                   what the DNS server answers for a name, and why (dns component)
 *   GET  /metrics                        Prometheus text format
 *   GET  /ui                             the status page (self-contained HTML; /ui/state its JSON,
 *                                        /ui/events its live stream): read-only, no token, like /metrics
 *
 * The server knows the daemon only through `ApiBackend`, so it is tested against a stub.
 */
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { LashupError } from '../common/index.js';
import { removeStaleSocket } from '../net/index.js';
import type { Logger } from '../log/index.js';
import { ApiError, BadRequestError, NotFoundError, PayloadTooLargeError, UnauthorizedError } from './api-errors.js';
import { checkRequest } from './api-guard.js';
import { matchRoute, pathSegments, type Route } from './api-router.js';
import { openEventStream } from './sse.js';
import { type HistogramBucket, UiHub } from './ui-hub.js';
import { STATUS_PAGE_HTML } from './ui-page.js';

/** A store change as the watch stream reports it. */
export interface KvWatchEvent {
  key: string;
  /** The new value; undefined when the key was removed. */
  value: unknown;
  /** Part of the replay of the current value, not a change. */
  initial: boolean;
}

/** What the API asks of the daemon. Methods throw ApiErrors for refusals. */
export interface ApiBackend {
  status(): unknown;
  members(): unknown;
  /** A store value; undefined when the key holds none. */
  kvGet(key: string): unknown;
  /** Calls `onEvent` with the current value (if any) and every change; returns the unsubscribe. */
  kvWatch(key: string, onEvent: (event: KvWatchEvent) => void): () => void;
  routes(): unknown;
  allocations(): unknown;
  release(agent: string, force: boolean): Promise<unknown>;
  usage(network: string): unknown;
  /** Checks that the daemon can leave (throws otherwise); the returned function starts leaving. */
  prepareLeave(): () => void;
  /** The Prometheus exposition, the API's own counters included. */
  metrics(apiStats: ApiStats): Promise<string>;
  /** Address usage rows for the status page (network, kind, used, capacity). */
  usageSummary?(): UsageRow[];
  /** The store propagation histogram's cumulative buckets (seconds), for the status page's chart. */
  propagationBuckets?(): Promise<HistogramBucket[]>;
}

/** One line of the status page's address usage table. */
export interface UsageRow {
  network: string;
  /** "blocks IPv4", "blocks IPv6" (masters: per-agent blocks), "cni" or "docker" (container addresses). */
  kind: string;
  used: number;
  capacity: number;
}

/** A route a component adds to the API (read-only views of its state, for now). */
export interface ComponentRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Pattern as in the route table (`/v1/firewall`, `/v1/things/:name`). */
  pattern: string;
  /** Returns the JSON answer; throws ApiErrors for refusals. */
  handler: (params: Record<string, string>, query: URLSearchParams) => unknown;
}

export interface ApiServerOptions {
  /** TCP listener address (port 0: any free port). */
  host: string;
  port: number;
  /** Listen on TCP at all (default true). */
  tcp?: boolean;
  /**
   * The bearer token TCP clients must present for every route but /metrics. Undefined: the TCP
   * listener asks for none (tests of the routes themselves).
   */
  token?: string;
  /** Unix socket for local control (no token: the file mode decides who may connect). */
  socketPath?: string;
  /** Mode of the socket file (default 0o600). */
  socketMode?: number;
  /** Group id given to the socket file (with socketMode 0o660, like docker's group). */
  socketGid?: number;
  backend: ApiBackend;
  logger?: Logger;
  /** Routes the components add; one that repeats a method and pattern is refused at construction. */
  routes?: readonly ComponentRoute[];
  /**
   * Serve the status page (GET /ui, /ui/state, /ui/events): read-only, and over TCP without the
   * token, like /metrics (default true).
   */
  ui?: boolean;
}

/** How often the status page's policy counters are read (each read lists nftables' counters). */
const UI_POLICY_REFRESH_MS = 10_000;

export interface ApiStats {
  requests: number;
  /** Requests answered with a 4xx status (bad input). */
  clientErrors: number;
  serverErrors: number;
  watchers: number;
  /** Status pages open now (their event streams); filled in for /metrics. */
  uiPages?: number;
  /** Status page states that could not be assembled (the page shows the problem); filled in for /metrics. */
  uiStateFailures?: number;
}

const MAX_KEY_LENGTH = 512;
/** Largest request body accepted (no route takes one today). */
const MAX_BODY_BYTES = 64 * 1024;

interface Request {
  params: Record<string, string>;
  query: URLSearchParams;
  req: IncomingMessage;
  res: ServerResponse;
}

type Handler = (r: Request) => unknown;

export class ApiServer {
  readonly stats: ApiStats = { requests: 0, clientErrors: 0, serverErrors: 0, watchers: 0 };
  private readonly server: Server;
  private readonly socketServer: Server | undefined;
  private readonly closers = new Set<() => void>();
  private readonly backend: ApiBackend;
  private readonly routes: Route<Handler>[];
  private readonly ui: UiHub;
  private policyCache: { atMs: number; value: unknown } | undefined;

  constructor(private readonly options: ApiServerOptions) {
    this.backend = options.backend;
    const b = this.backend;
    this.ui = new UiHub({ state: () => this.uiState(), propagation: () => b.propagationBuckets?.() ?? Promise.resolve([]) });
    this.routes = [
      { method: 'GET', pattern: '/v1/status', handler: () => b.status() },
      { method: 'GET', pattern: '/v1/members', handler: () => b.members() },
      { method: 'GET', pattern: '/v1/kv/*key', handler: (r) => this.kv(r) },
      { method: 'GET', pattern: '/v1/routes', handler: () => b.routes() },
      { method: 'GET', pattern: '/v1/allocations', handler: () => b.allocations() },
      { method: 'POST', pattern: '/v1/allocations/:agent/release', handler: (r) => this.release(r) },
      { method: 'GET', pattern: '/v1/overlay/:network/usage', handler: (r) => b.usage(r.params['network'] as string) },
      { method: 'POST', pattern: '/v1/leave', handler: (r) => this.leave(r) },
      { method: 'GET', pattern: '/metrics', handler: (r) => this.metrics(r) },
    ];
    if (options.ui !== false) {
      this.routes.push(
        { method: 'GET', pattern: '/ui', handler: (r) => this.uiPage(r) },
        { method: 'GET', pattern: '/ui/state', handler: () => this.ui.snapshot() },
        { method: 'GET', pattern: '/ui/events', handler: (r) => this.uiEvents(r) },
      );
    }
    for (const extra of options.routes ?? []) {
      if (this.routes.some((r) => r.method === extra.method && r.pattern === extra.pattern)) {
        throw new LashupError('LASHUP_ERR_API_ROUTE_TAKEN', `API route ${extra.method} ${extra.pattern} is registered twice`, { method: extra.method, pattern: extra.pattern });
      }
      this.routes.push({ method: extra.method, pattern: extra.pattern, handler: (r) => extra.handler(r.params, r.query) });
    }
    this.server = createServer((req, res) => {
      this.stats.requests++;
      this.handle(req, res, 'tcp').catch((err: unknown) => this.fail(res, err));
    });
    this.socketServer =
      options.socketPath === undefined
        ? undefined
        : createServer((req, res) => {
            this.stats.requests++;
            this.handle(req, res, 'unix').catch((err: unknown) => this.fail(res, err));
          });
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  /** Starts the listeners: the unix socket (when configured), then TCP (unless turned off). */
  async listen(): Promise<void> {
    const path = this.options.socketPath;
    if (this.socketServer !== undefined && path !== undefined) {
      await removeStaleSocket(path);
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      await listenOn(this.socketServer, (done) => this.socketServer?.listen(path, done));
      try {
        // The mode decides who may control the daemon: set before anyone can have connected
        // in a way that matters (the umask already kept others out while it was created).
        chmodSync(path, this.options.socketMode ?? 0o600);
        if (this.options.socketGid !== undefined) chownSync(path, -1, this.options.socketGid);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
    if (this.options.tcp === false) return;
    try {
      await listenOn(this.server, (done) => this.server.listen(this.options.port, this.options.host, done));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  close(): Promise<void> {
    this.ui.stop();
    for (const close of [...this.closers]) close();
    const servers = [this.server, ...(this.socketServer === undefined ? [] : [this.socketServer])];
    return Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            if (!server.listening) return resolve();
            server.close(() => resolve());
          }),
      ),
    ).then(() => {
      // A socket file left behind would make the next start think a daemon runs.
      if (this.options.socketPath !== undefined && existsSync(this.options.socketPath)) rmSync(this.options.socketPath, { force: true });
    });
  }

  private fail(res: ServerResponse, err: unknown): void {
    const status = err instanceof ApiError ? err.status : 500;
    if (status >= 500) {
      this.stats.serverErrors++;
      this.options.logger?.warn({ err }, 'API request failed');
    } else {
      this.stats.clientErrors++;
      // Debug, not warn: a scraper probing paths must not flood the log; the counter shows it.
      this.options.logger?.debug({ status, err: err instanceof Error ? err.message : String(err) }, 'API request refused');
    }
    const code = err instanceof LashupError ? err.code : 'LASHUP_ERR_INTERNAL';
    if (!res.headersSent) {
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(status === 405 ? { allow: ((err as ApiError).details['allowed'] as string[]).join(', ') } : {}),
        ...(status === 401 ? { 'www-authenticate': 'Bearer realm="lashup"' } : {}),
      });
      res.end(`${JSON.stringify({ code, message: err instanceof Error ? err.message : String(err) })}\n`);
    } else res.end();
  }

  private json(res: ServerResponse, value: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(value, null, 2)}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, via: 'tcp' | 'unix'): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    // No route reads a body: a large one is refused before anything else (and the connection
    // closed, so the client stops sending it).
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_BODY_BYTES || req.headers['transfer-encoding'] !== undefined) {
      res.setHeader('connection', 'close');
      throw new PayloadTooLargeError(
        req.headers['transfer-encoding'] !== undefined
          ? `a request body of unknown length (Transfer-Encoding: ${String(req.headers['transfer-encoding']).slice(0, 20)}) is not accepted; send Content-Length, at most ${MAX_BODY_BYTES} bytes`
          : `a request body of ${length} bytes is not accepted; expected at most ${MAX_BODY_BYTES}`,
        { bytes: length },
      );
    }
    // The unix socket is reached only through its file mode: no browser, no token. Over TCP the
    // guard stops forged browser requests and the token everything but the metrics.
    if (via === 'tcp') {
      const refusal = checkRequest({ method, headers: req.headers }, this.port);
      if (refusal !== undefined) throw refusal;
      const open = method === 'GET' && (url.pathname === '/metrics' || (this.options.ui !== false && /^\/ui(\/(state|events))?$/.test(url.pathname)));
      if (this.options.token !== undefined && !open && !tokenMatches(req.headers.authorization, this.options.token)) {
        throw new UnauthorizedError(
          'LASHUP_ERR_UNAUTHORIZED',
          `${method} ${url.pathname} over TCP needs "Authorization: Bearer TOKEN" (the token is in the daemon's api.tokenFile; the lashup CLI reads it, or use the unix socket)`,
        );
      }
    }
    const match = matchRoute(this.routes, method, pathSegments(url.pathname));
    if (match === undefined) {
      throw new NotFoundError(
        'LASHUP_ERR_NOT_FOUND',
        `${method} ${url.pathname} is not an API route; see /v1/status, /v1/members, /v1/kv/{key}, /v1/routes, /v1/allocations, /v1/overlay/{network}/usage, /metrics`,
      );
    }
    const value = await match.route.handler({ params: match.params, query: url.searchParams, req, res });
    // Handlers that answer themselves (streams, metrics) return undefined.
    if (value !== undefined && !res.headersSent) this.json(res, value);
  }

  private kv(r: Request): unknown {
    const key = r.params['key'] as string;
    if (key.length > MAX_KEY_LENGTH) throw new BadRequestError(`key of ${key.length} characters is not valid; expected 1-${MAX_KEY_LENGTH}`);
    const watch = flag(r.query, 'watch');
    if (!watch) {
      const value = this.backend.kvGet(key);
      if (value === undefined) throw new NotFoundError('LASHUP_ERR_NO_SUCH_KEY', `no key ${JSON.stringify(key)}`);
      return { key, value };
    }
    this.stats.watchers++;
    let unsubscribe: (() => void) | undefined;
    const stream = openEventStream(r.req, r.res, () => {
      this.closers.delete(stream.close);
      this.stats.watchers--;
      unsubscribe?.();
    });
    this.closers.add(stream.close);
    unsubscribe = this.backend.kvWatch(key, (event) => stream.send(event.value === undefined ? 'removed' : 'value', { key: event.key, value: event.value ?? null, initial: event.initial }));
    return undefined;
  }

  private uiPage(r: Request): undefined {
    r.res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      // Everything is inline; nothing may load from elsewhere (nodes are often offline, and the
      // page must not be a way to reach out).
      'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
      'cache-control': 'no-cache',
    });
    r.res.end(STATUS_PAGE_HTML);
    return undefined;
  }

  private uiEvents(r: Request): undefined {
    let unsubscribe: (() => void) | undefined;
    const stream = openEventStream(r.req, r.res, () => {
      this.closers.delete(stream.close);
      unsubscribe?.();
    });
    this.closers.add(stream.close);
    unsubscribe = this.ui.subscribe((event, data) => stream.send(event, data));
    return undefined;
  }

  /** A component's GET view by pattern (undefined when no component serves it). */
  private async componentView(pattern: string, query = ''): Promise<unknown> {
    const route = this.routes.find((r) => r.method === 'GET' && r.pattern === pattern);
    if (route === undefined) return undefined;
    return route.handler({ params: {}, query: new URLSearchParams(query) } as Request);
  }

  /** The status page's state: the API's read-only views, each failure shown in its place. */
  private async uiState(): Promise<Record<string, unknown>> {
    const b = this.backend;
    const attempt = async (view: () => unknown): Promise<unknown> => {
      try {
        return await view();
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) };
      }
    };
    const now = Date.now();
    if (this.policyCache === undefined || now - this.policyCache.atMs >= UI_POLICY_REFRESH_MS) {
      this.policyCache = { atMs: now, value: await attempt(() => this.componentView('/v1/policy')) };
    }
    return {
      status: await attempt(() => b.status()),
      members: await attempt(() => b.members()),
      routes: await attempt(() => b.routes()),
      allocations: await attempt(() => b.allocations()),
      usage: b.usageSummary?.() ?? [],
      vips: await attempt(() => this.componentView('/v1/vips', 'counters=0')),
      policy: this.policyCache.value,
    };
  }

  private release(r: Request): Promise<unknown> {
    const agent = r.params['agent'] as string;
    if (agent.length > 256) throw new BadRequestError(`agent name ${JSON.stringify(agent.slice(0, 40))} is not valid; expected 1-256 characters`);
    return this.backend.release(agent, flag(r.query, 'force'));
  }

  private leave(r: Request): unknown {
    const start = this.backend.prepareLeave();
    // Answer first: leaving closes this server, and with it this connection.
    r.res.on('finish', start);
    return { leaving: true };
  }

  private async metrics(r: Request): Promise<undefined> {
    const text = await this.backend.metrics({ ...this.stats, uiPages: this.ui.pages, uiStateFailures: this.ui.failures });
    r.res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    r.res.end(text);
    return undefined;
  }
}

/** A boolean query flag: absent, 0 or false is false; 1 or true is true; anything else is a 400. */
function flag(query: URLSearchParams, name: string): boolean {
  const text = query.get(name);
  if (text === null) return false;
  if (text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  throw new BadRequestError(`${name} = ${JSON.stringify(text.slice(0, 20))} is not valid; expected 1, true, 0 or false`);
}

function listenOn(server: Server, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    start(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Compares a presented bearer token in constant time. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
