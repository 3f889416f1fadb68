/**
 * A fake Docker Engine API on a unix socket (node:http): enough of the networks API for the
 * client and the keeper, with containers attached by hand and a switch to stop answering.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { DockerNetwork } from '../../src/docker/index.js';

/** A running container as GET /containers/json lists it. */
export interface FakeContainer {
  Id: string;
  Labels: Record<string, string>;
  NetworkSettings: { Networks: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }> };
}

export class FakeEngine {
  readonly networks = new Map<string, DockerNetwork>();
  readonly calls: string[] = [];
  /** Running containers (GET /containers/json answers those carrying the filter's label). */
  readonly containers: FakeContainer[] = [];
  /** Answer GET /containers/json with a 500 (a daemon failing part of a sync). */
  failContainers = false;
  /** Open GET /events streams. */
  private readonly streams = new Set<ServerResponse>();
  private readonly streamWaiters: (() => void)[] = [];
  /** Hold every request without answering (a hung daemon). */
  hang = false;
  private server: Server | undefined;
  private next = 1;

  constructor(readonly socketPath: string) {}

  listen(): Promise<void> {
    this.server = createServer((req, res) => {
      if (this.hang) return;
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const path = (req.url ?? '').replace(/^\/v1\.41/, '');
        this.calls.push(`${req.method} ${path}`);
        const json = (status: number, value: unknown): void => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        if (req.method === 'GET' && path === '/_ping') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('OK');
          return;
        }
        if (req.method === 'GET' && path.startsWith('/containers/json') && this.failContainers) return json(500, { message: 'containers are on fire' });
        if (req.method === 'GET' && path.startsWith('/containers/json')) {
          const filters = JSON.parse(new URL(`http://x${path}`).searchParams.get('filters') ?? '{}') as { label?: string[] };
          const label = filters.label?.[0];
          return json(
            200,
            this.containers.filter((c) => label === undefined || c.Labels[label] !== undefined),
          );
        }
        if (req.method === 'GET' && path.startsWith('/events')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.flushHeaders();
          this.streams.add(res);
          res.on('close', () => this.streams.delete(res));
          for (const resolve of this.streamWaiters.splice(0)) resolve();
          return;
        }
        if (req.method === 'GET' && path === '/networks')
          return json(
            200,
            [...this.networks.values()].map((n) => ({ ...n, Containers: {} })),
          );
        const one = /^\/networks\/([^/]+)$/.exec(path);
        if (req.method === 'GET' && one !== null) {
          const n = this.networks.get(decodeURIComponent(one[1] as string));
          return n === undefined ? json(404, { message: 'network not found' }) : json(200, n);
        }
        if (req.method === 'DELETE' && one !== null) {
          const id = decodeURIComponent(one[1] as string);
          const n = this.networks.get(id);
          if (n === undefined) return json(404, { message: 'network not found' });
          if (Object.keys(n.Containers ?? {}).length > 0) return json(403, { message: `error while removing network: network ${n.Name} id ${id} has active endpoints` });
          this.networks.delete(id);
          res.writeHead(204);
          res.end();
          return;
        }
        if (req.method === 'POST' && path === '/networks/create') {
          const spec = JSON.parse(body) as Omit<DockerNetwork, 'Id'>;
          if ([...this.networks.values()].some((n) => n.Name === spec.Name)) return json(409, { message: `network with name ${spec.Name} already exists` });
          const id = this.add(spec);
          return json(201, { Id: id, Warning: '' });
        }
        json(404, { message: `page not found: ${req.method} ${path}` });
      });
    });
    const server = this.server;
    return new Promise((resolve) => server.listen(this.socketPath, resolve));
  }

  /** Adds a network as if someone created it (lashup or not); returns its id. */
  add(spec: Omit<DockerNetwork, 'Id'>): string {
    const id = `net${this.next++}`.padEnd(64, '0');
    this.networks.set(id, { Containers: {}, ...spec, Id: id } as DockerNetwork);
    return id;
  }

  byName(name: string): DockerNetwork | undefined {
    return [...this.networks.values()].find((n) => n.Name === name);
  }

  attach(name: string, container: string): void {
    const n = this.byName(name);
    if (n === undefined) throw new Error(`no network ${name}`);
    n.Containers = { ...(n.Containers ?? {}), [container]: { Name: container } };
  }

  /** Sends an event to every open events stream (a line of JSON, as dockerd does); returns how many streams got it. */
  emit(event: Record<string, unknown>): number {
    for (const res of this.streams) res.write(`${JSON.stringify(event)}\n`);
    return this.streams.size;
  }

  /** Sends a raw line (not necessarily an event) to every open events stream. */
  emitRaw(line: string): void {
    for (const res of this.streams) res.write(`${line}\n`);
  }

  /** Resolves once an events stream is open (at once when one is). */
  streamOpened(): Promise<void> {
    if (this.streams.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.streamWaiters.push(resolve));
  }

  /** Ends every events stream (a daemon restarting). */
  endStreams(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
