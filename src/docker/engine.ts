/**
 * A small typed client of the Docker Engine API over its unix socket: the calls lashup needs
 * (ping; list, inspect, create and remove networks; list labelled containers), each with a
 * timeout, and the events stream (no timeout: it is held open, and closed by its owner).
 *
 * Written here rather than taken from `dockerode`: dockerode (with docker-modem, and ssh2 as an
 * optional native dependency) covers the whole API for ~1.5 MB of dependencies, while these
 * calls are a few JSON requests over `node:http`; owning them also lets every failure become a
 * typed error with a stable code (an unreachable socket, a timeout, an API status) instead of
 * the library's own, and keeps a slow daemon from holding anything but the one request.
 *
 * API version 1.41 (Docker 20.10, Debian 12's docker.io): newer daemons serve older versions.
 */
import { request } from 'node:http';
import { DockerError, DockerErrorCode } from './errors.js';

export const DOCKER_API_VERSION = '1.41';

/** A Docker network as the Engine API describes it (the fields lashup reads). */
export interface DockerNetwork {
  Id: string;
  Name: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver?: string; Config: { Subnet?: string; Gateway?: string }[] | null };
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
  /** Attached containers (inspect only; the list leaves it empty). */
  Containers?: Record<string, { Name?: string; IPv4Address?: string; IPv6Address?: string }> | null;
}

/** What `createNetwork` sends (Engine API `POST /networks/create`). */
export interface DockerNetworkSpec {
  Name: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Config: { Subnet: string; Gateway: string }[] };
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

/** A container as `GET /containers/json` describes it (the fields lashup reads). */
export interface DockerContainer {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  /** Endpoints by network name. */
  Networks: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }>;
}

/** One message of the events stream (the fields lashup reads). */
export interface DockerEvent {
  Type?: string;
  Action?: string;
}

/** An open events stream: `done` settles when it ends (daemon gone, closed). */
export interface DockerEventStream {
  close(): void;
  done: Promise<void>;
  /** Lines of the stream that were not a JSON object (skipped; the next sync covers them). */
  readonly badLines: number;
}

/** The calls lashup makes; an interface so the keeper can be driven without a daemon. */
export interface DockerApi {
  ping(): Promise<void>;
  listNetworks(): Promise<DockerNetwork[]>;
  inspectNetwork(id: string): Promise<DockerNetwork>;
  createNetwork(spec: DockerNetworkSpec): Promise<string>;
  removeNetwork(id: string): Promise<void>;
  /** Running containers that carry label `label` (any value). */
  listContainers(label: string): Promise<DockerContainer[]>;
  /** Container and network events, each given to `onEvent`, until closed or the daemon ends the stream. */
  events(onEvent: (event: DockerEvent) => void): DockerEventStream;
}

export interface DockerEngineOptions {
  socketPath: string;
  /** Longest a request may take, ms. */
  timeoutMs: number;
}

/** Longest response body read, bytes: a list of networks is a few KB per network. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function isNetwork(v: unknown): v is DockerNetwork {
  if (v === null || typeof v !== 'object') return false;
  const n = v as Record<string, unknown>;
  return typeof n['Id'] === 'string' && typeof n['Name'] === 'string' && typeof n['Driver'] === 'string';
}

export class DockerEngine implements DockerApi {
  constructor(private readonly options: DockerEngineOptions) {}

  async ping(): Promise<void> {
    await this.call('GET', '/_ping');
  }

  async listNetworks(): Promise<DockerNetwork[]> {
    const body = await this.call('GET', '/networks');
    if (!Array.isArray(body)) throw this.bad('GET /networks', 'expected an array of networks');
    return body.filter(isNetwork).map(normalize);
  }

  async inspectNetwork(id: string): Promise<DockerNetwork> {
    const body = await this.call('GET', `/networks/${encodeURIComponent(id)}`);
    if (!isNetwork(body)) throw this.bad(`GET /networks/${id}`, 'expected a network');
    return normalize(body);
  }

  async createNetwork(spec: DockerNetworkSpec): Promise<string> {
    const body = (await this.call('POST', '/networks/create', { ...spec, CheckDuplicate: true })) as { Id?: unknown } | null;
    if (body === null || typeof body !== 'object' || typeof body.Id !== 'string') throw this.bad('POST /networks/create', 'expected { Id }');
    return body.Id;
  }

  async removeNetwork(id: string): Promise<void> {
    await this.call('DELETE', `/networks/${encodeURIComponent(id)}`);
  }

  async listContainers(label: string): Promise<DockerContainer[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label], status: ['running'] }));
    const body = await this.call('GET', `/containers/json?filters=${filters}`);
    if (!Array.isArray(body)) throw this.bad('GET /containers/json', 'expected an array of containers');
    const out: DockerContainer[] = [];
    for (const c of body as unknown[]) {
      const r = c as { Id?: unknown; Names?: unknown; Labels?: unknown; NetworkSettings?: { Networks?: unknown } } | null;
      if (r === null || typeof r !== 'object' || typeof r.Id !== 'string') continue;
      const networks = r.NetworkSettings?.Networks;
      out.push({
        Id: r.Id,
        Names: Array.isArray(r.Names) ? r.Names.filter((n): n is string => typeof n === 'string') : [],
        Labels: r.Labels !== null && typeof r.Labels === 'object' ? (r.Labels as Record<string, string>) : {},
        Networks: networks !== null && typeof networks === 'object' ? (networks as DockerContainer['Networks']) : {},
      });
    }
    return out;
  }

  events(onEvent: (event: DockerEvent) => void): DockerEventStream {
    const { socketPath } = this.options;
    const filters = encodeURIComponent(JSON.stringify({ type: ['container', 'network'] }));
    let req: ReturnType<typeof request> | undefined;
    const counts = { badLines: 0 };
    const done = new Promise<void>((resolve) => {
      req = request({ socketPath, method: 'GET', path: `/v${DOCKER_API_VERSION}/events?filters=${filters}`, headers: { host: 'docker' } }, (res) => {
        if ((res.statusCode ?? 0) !== 200) {
          res.resume();
          resolve();
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          // One JSON object per line; a line past MAX_BODY_BYTES is not an event (dropped).
          if (buffer.length > MAX_BODY_BYTES) {
            buffer = '';
            counts.badLines++;
          }
          for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
            const line = buffer.slice(0, end).trim();
            buffer = buffer.slice(end + 1);
            if (line === '') continue;
            let event: unknown;
            try {
              event = JSON.parse(line) as unknown;
            } catch {
              // Not JSON: counted and skipped; the next sync covers whatever it was.
              event = undefined;
            }
            if (event !== null && typeof event === 'object') onEvent(event as DockerEvent);
            else counts.badLines++;
          }
        });
        res.on('end', () => resolve());
        res.on('error', () => resolve());
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
    return {
      close: () => req?.destroy(),
      done,
      get badLines() {
        return counts.badLines;
      },
    };
  }

  private bad(what: string, expected: string): DockerError {
    return new DockerError(DockerErrorCode.BadResponse, `the Docker daemon answered ${what} with something unexpected: ${expected}`, { what });
  }

  /** One request; the parsed JSON body (or text for /_ping), or a DockerError. */
  private call(method: string, path: string, payload?: unknown): Promise<unknown> {
    const { socketPath, timeoutMs } = this.options;
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath,
          method,
          path: `/v${DOCKER_API_VERSION}${path}`,
          headers: { host: 'docker', ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }) },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) {
              req.destroy();
              reject(this.bad(`${method} ${path}`, `a body under ${MAX_BODY_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => reject(new DockerError(DockerErrorCode.Unreachable, `the Docker daemon at ${socketPath} broke off ${method} ${path}: ${err.message}`, { socketPath })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text.length > 0) {
              try {
                parsed = JSON.parse(text) as unknown;
              } catch {
                reject(this.bad(`${method} ${path}`, 'JSON'));
                return;
              }
            }
            if (status >= 200 && status < 300) {
              resolve(parsed);
              return;
            }
            const message =
              typeof parsed === 'object' && parsed !== null && typeof (parsed as { message?: unknown }).message === 'string' ? (parsed as { message: string }).message : text.slice(0, 200);
            reject(new DockerError(DockerErrorCode.Api, `the Docker daemon refused ${method} ${path} (${status}): ${message}`, { status, method, path, message }));
          });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        reject(new DockerError(DockerErrorCode.Timeout, `the Docker daemon at ${socketPath} did not answer ${method} ${path} within ${timeoutMs} ms`, { socketPath, timeoutMs }));
      });
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(new DockerError(DockerErrorCode.Unreachable, `no Docker daemon answers at ${socketPath} (${err.code ?? err.message})`, { socketPath, cause: err.code ?? err.message })),
      );
      req.end(body);
    });
  }
}

/** Nulls the API may send for empty maps made empty maps, so readers need not care. */
function normalize(n: DockerNetwork): DockerNetwork {
  return {
    ...n,
    EnableIPv6: n.EnableIPv6 === true,
    IPAM: { ...(n.IPAM ?? {}), Config: Array.isArray(n.IPAM?.Config) ? n.IPAM.Config : [] },
    Options: n.Options ?? {},
    Labels: n.Labels ?? {},
    Containers: n.Containers ?? {},
  };
}
