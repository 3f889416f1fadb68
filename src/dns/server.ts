/**
 * The daemon's DNS server (UDP and TCP): answers the Virtual Network Service names of its zone
 * from the task catalog, and forwards every other name to upstream resolvers.
 *
 * Messages are decoded and encoded with `dns-packet` (a well-kept codec; a hand-written one is
 * where compression loops and count overflows hide). Hostile input never crashes the server and
 * is never amplified: a message that does not decode gets FORMERR (when it carries at least a
 * header) or is dropped; ANY is refused; an answer larger than the client allows (512 bytes, or
 * its EDNS size) is sent truncated (TC) without records, so the client retries over TCP.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import * as packet from 'dns-packet';
import type { Logger } from '../log/index.js';
import { inZone, parseTaskName, type TaskCatalog } from './catalog.js';
import { plainQuestionKey } from './question-key.js';

export interface DnsServerOptions {
  /** Addresses to listen on (UDP and TCP each). */
  listen: readonly string[];
  /** Port (0: any free port, tests). */
  port: number;
  /** The zone answered here, e.g. `dcos.thisdcos.directory`. */
  zone: string;
  ttlSeconds: number;
  catalog: TaskCatalog;
  /** Whether a publishing agent is down (its records are withheld). */
  down: (agent: string) => boolean;
  /** Upstream resolvers (`host` or `host:port`) for names outside the zone. */
  upstreams: readonly string[];
  /** Longest wait for an upstream, ms (then the next one, then SERVFAIL). */
  upstreamTimeoutMs: number;
  logger?: Logger;
}

export interface DnsServerStats {
  /** Queries answered, by query type then response code (`A: { NOERROR: 3 }`). */
  queries: Record<string, Record<string, number>>;
  /** Messages that did not decode: answered FORMERR or dropped. */
  malformed: number;
  /** Upstream queries that failed (timeout, error, bad answer). */
  forwardErrors: number;
  /** Answers sent truncated (too large for the client's limit). */
  truncated: number;
  /** Task records in the catalog now. */
  records: number;
  /** Queries outside the zone answered SERVFAIL at once: MAX_FORWARDS_IN_FLIGHT were waiting. */
  forwardsShed: number;
}

const MAX_UDP_PAYLOAD = 4096;

/**
 * Queries waiting for an upstream at once, at most; beyond it a query outside the zone gets
 * SERVFAIL at once. Each forward holds a socket and a timer for up to the upstream timeout: a
 * flood of random names (the fuzz test's) exhausted file descriptors and starved the zone's own
 * answers without this bound.
 */
const MAX_FORWARDS_IN_FLIGHT = 256;

/** Cached answers of the zone, at most (beyond: the cache starts over; 10,000 names fit). */
const MAX_CACHED_ANSWERS = 20_000;

/** Response codes (RFC 1035 4.1.1) by name. */
const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

export class DnsServer {
  readonly stats: DnsServerStats = { queries: {}, malformed: 0, forwardErrors: 0, truncated: 0, records: 0, forwardsShed: 0 };
  private forwardsInFlight = 0;
  private lastMalformedLogMs = -Infinity;
  private readonly udp: Socket[] = [];
  private readonly tcp: Server[] = [];
  private readonly tcpClients = new Set<TcpSocket>();
  private readonly extra = new Map<string, { udp: Socket; tcp: Server }>();
  /**
   * Encoded answers of the zone. Invariant: an entry is used only while the catalog has the
   * generation it was made from and no membership change came since (invalidate()). No expiry
   * by time: entries remade every second were promoted out of the young generation and made
   * every scavenge copy megabytes (p99 latency of 5 ms at 5,000 queries/s, seen in the dns
   * benchmark).
   */
  private readonly cache = new Map<string, { bytes: Buffer; type: string; rcode: string; generation: number; truncated: boolean }>();
  private closed = false;

  constructor(private readonly options: DnsServerOptions) {}

  /** The UDP port listened on (the chosen one with port 0). */
  get port(): number {
    return this.udp[0]?.address().port ?? this.options.port;
  }

  async listen(): Promise<void> {
    let port = this.options.port;
    for (const host of this.options.listen) {
      const bound = await this.bind(host, port);
      port = bound.udp.address().port;
      this.udp.push(bound.udp);
      this.tcp.push(bound.tcp);
    }
  }

  /**
   * The addresses served besides `listen`, on the same port: the overlay bridges' gateways,
   * which come and go with the lease and exist only once the dataplane has made the bridges.
   * Addresses no longer wanted are closed; those that cannot be bound yet are returned (the
   * caller retries: EADDRNOTAVAIL until the bridge has its address).
   */
  async setExtraListen(hosts: readonly string[]): Promise<{ host: string; error: string }[]> {
    const wanted = new Set(hosts.filter((h) => !this.options.listen.includes(h)));
    for (const [host, bound] of this.extra) {
      if (wanted.has(host)) continue;
      this.extra.delete(host);
      bound.udp.close();
      bound.tcp.close();
    }
    const failed: { host: string; error: string }[] = [];
    for (const host of wanted) {
      if (this.extra.has(host) || this.closed) continue;
      try {
        this.extra.set(host, await this.bind(host, this.port));
      } catch (err) {
        failed.push({ host, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return failed;
  }

  /** The addresses served now. */
  get listening(): string[] {
    return [...this.options.listen, ...this.extra.keys()];
  }

  /** One UDP socket and one TCP server on host:port, both or neither. */
  private async bind(host: string, port: number): Promise<{ udp: Socket; tcp: Server }> {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => void this.onUdp(socket, msg, rinfo));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    // Only once bound: a bind that fails is the caller's to report. Attached before the bind, this
    // warned at every failed bind as well, and a bridge gateway not yet addressed is retried every
    // second: each agent's start logged a warning per gateway per retry for an expected wait
    // that the daemon reports once, at info.
    socket.on('error', (err) => this.options.logger?.warn({ err: err.message }, 'DNS UDP socket error'));
    const server = createServer((client) => this.onTcp(client));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket.address().port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    server.on('error', (err) => this.options.logger?.warn({ err: err.message }, 'DNS TCP server error'));
    return { udp: socket, tcp: server };
  }

  close(): Promise<void> {
    this.closed = true;
    const extra = [...this.extra.values()];
    this.extra.clear();
    for (const s of [...this.udp, ...extra.map((e) => e.udp)]) s.close();
    for (const c of this.tcpClients) c.destroy();
    return Promise.all([...this.tcp, ...extra.map((e) => e.tcp)].map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
  }

  private onUdp(socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    const reply = this.answer(msg, 'udp');
    // Answers of the zone are ready at once (no promise per query on the hot path); forwarded
    // ones arrive later.
    if (reply instanceof Promise) {
      void reply.then((r) => {
        if (r !== undefined && !this.closed) socket.send(r, rinfo.port, rinfo.address);
      });
    } else if (reply !== undefined && !this.closed) socket.send(reply, rinfo.port, rinfo.address);
  }

  /**
   * Forgets every cached answer: the caller must call it whenever what `down` answers may have
   * changed (a member failed or came back). Catalog changes are seen without it (its generation).
   */
  invalidate(): void {
    this.cache.clear();
  }

  private onTcp(client: TcpSocket): void {
    this.tcpClients.add(client);
    client.setTimeout(10_000, () => client.destroy());
    let buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length > 70_000) {
        client.destroy();
        return;
      }
      while (buffer.length >= 2) {
        const length = buffer.readUInt16BE(0);
        if (buffer.length < 2 + length) break;
        const msg = buffer.subarray(2, 2 + length);
        buffer = buffer.subarray(2 + length);
        void Promise.resolve(this.answer(msg, 'tcp')).then((reply) => {
          if (reply === undefined || client.destroyed) return;
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          client.write(framed);
        });
      }
    });
    client.on('error', () => undefined);
    client.on('close', () => this.tcpClients.delete(client));
  }

  /** Counts a malformed message; logs at most every 10 s (hostile input must not flood the log). */
  private malformed(): void {
    this.stats.malformed++;
    const now = Date.now();
    if (now - this.lastMalformedLogMs < 10_000) return;
    this.lastMalformedLogMs = now;
    this.options.logger?.warn({ code: 'LASHUP_ERR_DNS_MALFORMED', malformed: this.stats.malformed }, 'malformed DNS messages answered FORMERR or dropped');
  }

  private count(type: string, rcode: string): void {
    const row = this.stats.queries[type] ?? {};
    row[rcode] = (row[rcode] ?? 0) + 1;
    this.stats.queries[type] = row;
  }

  /**
   * The reply to one message, or undefined to drop it. Never throws: a message that decodes
   * but cannot be answered (a question the codec cannot encode back, a class or type it does
   * not know) counts as malformed, like one that does not decode.
   */
  answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined | Promise<Buffer | undefined> {
    try {
      const reply = this.answerOrThrow(msg, transport);
      return reply instanceof Promise ? reply.catch(() => this.formerr(msg)) : reply;
    } catch {
      return this.formerr(msg);
    }
  }

  /** FORMERR for a message that could not be answered (counted); dropped without a whole header. */
  private formerr(msg: Buffer): Buffer | undefined {
    this.malformed();
    try {
      return msg.length >= 12 ? packet.encode({ id: msg.readUInt16BE(0), type: 'response', flags: RCODES['FORMERR'] as number }) : undefined;
    } catch {
      return undefined;
    }
  }

  private answerOrThrow(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined | Promise<Buffer | undefined> {
    // A repeated plain question is answered from the cache before any decoding.
    const plain = plainQuestionKey(msg);
    const plainKey = plain === undefined ? undefined : `${transport}\u0000${plain}`;
    const cached = plainKey === undefined ? undefined : this.cached(plainKey, msg.readUInt16BE(0));
    if (cached !== undefined) return cached;
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(msg);
    } catch {
      this.malformed();
      // FORMERR needs the id: only a message with a whole header gets one.
      return msg.length >= 12 ? packet.encode({ id: msg.readUInt16BE(0), type: 'response', flags: 1 /* FORMERR */ }) : undefined;
    }
    const question = query.questions?.[0];
    if (query.type !== 'query' || question === undefined || (query.questions?.length ?? 0) !== 1 || typeof question.name !== 'string') {
      this.malformed();
      return this.encode(query, { rcode: 'FORMERR' }, transport);
    }
    const type = String(question.type);
    if (type === 'ANY') {
      this.count(type, 'REFUSED');
      return this.encode(query, { rcode: 'REFUSED' }, transport);
    }
    if (!inZone(question.name, this.options.zone)) return this.forward(msg, query, type, transport);
    // The zone's answers are cached encoded, by everything that shapes them: the question as
    // asked (its case is echoed back: resolvers randomise it), recursion desired, the transport
    // and the client's UDP limit. A hit copies the bytes and sets the id: no resolve, no encode.
    const key = plainKey ?? `${question.name}\u0000${type}\u0000${question.class}\u0000${(query.flags ?? 0) & packet.RECURSION_DESIRED}\u0000${transport === 'tcp' ? 'tcp' : this.udpLimit(query)}`;
    const hit = this.cached(key, query.id ?? 0);
    if (hit !== undefined) return hit;
    const generation = this.options.catalog.generation;
    const { reply, rcode } = this.local(query, question, transport);
    if (this.cache.size >= MAX_CACHED_ANSWERS) this.cache.clear();
    // Truncated: the TC bit of the reply's flags (byte 2, bit 1).
    this.cache.set(key, { bytes: reply, type, rcode, generation, truncated: (reply[2] ?? 0) & 0x02 ? true : false });
    return reply;
  }

  /** A copy of the cached answer for `key` with id `id` (counted like any answer), when it is current. */
  private cached(key: string, id: number): Buffer | undefined {
    const hit = this.cache.get(key);
    if (hit === undefined || hit.generation !== this.options.catalog.generation) return undefined;
    this.count(hit.type, hit.rcode);
    if (hit.truncated) this.stats.truncated++;
    const reply = Buffer.from(hit.bytes);
    reply.writeUInt16BE(id, 0);
    return reply;
  }

  private local(query: packet.DecodedPacket, question: packet.Question, transport: 'udp' | 'tcp'): { reply: Buffer; rcode: string } {
    const { zone, ttlSeconds, catalog } = this.options;
    const type = String(question.type);
    const parsed = parseTaskName(question.name, zone);
    let addresses: string[] | undefined;
    if (parsed !== undefined && (type === 'A' || type === 'AAAA')) addresses = catalog.resolve(parsed.task, parsed.framework, parsed.kind, type === 'A' ? 4 : 6, this.options.down);
    else if (parsed !== undefined && catalog.exists(parsed.task, parsed.framework, this.options.down, parsed.kind)) addresses = [];
    const isApex = question.name.toLowerCase().replace(/\.$/, '') === zone.toLowerCase();
    if (addresses === undefined && !isApex) {
      this.count(type, 'NXDOMAIN');
      return { reply: this.encode(query, { rcode: 'NXDOMAIN', authorities: [this.soa()] }, transport), rcode: 'NXDOMAIN' };
    }
    const answers: packet.Answer[] =
      isApex && type === 'SOA' ? [this.soa()] : (addresses ?? []).map((ip) => ({ name: question.name, type: type as 'A' | 'AAAA', class: 'IN' as const, ttl: ttlSeconds, data: ip }));
    this.count(type, 'NOERROR');
    return { reply: this.encode(query, { rcode: 'NOERROR', answers, authorities: answers.length === 0 ? [this.soa()] : [] }, transport), rcode: 'NOERROR' };
  }

  private soa(): packet.Answer {
    const zone = this.options.zone;
    return {
      name: zone,
      type: 'SOA',
      class: 'IN',
      ttl: this.options.ttlSeconds,
      data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 60, retry: 30, expire: 86_400, minimum: this.options.ttlSeconds },
    };
  }

  /** The reply, truncated (TC, no records) when larger than the client accepts over UDP. */
  private encode(query: packet.DecodedPacket, reply: { rcode: string; answers?: packet.Answer[]; authorities?: packet.Answer[] }, transport: 'udp' | 'tcp'): Buffer {
    const full = packet.encode({ ...this.header(query, reply.rcode), answers: reply.answers ?? [], authorities: reply.authorities ?? [] } as unknown as packet.Packet);
    if (transport === 'tcp' || full.length <= this.udpLimit(query)) return full;
    return this.truncated(query, reply.rcode);
  }

  private header(query: packet.DecodedPacket, rcode: string): { id: number; type: 'response'; flags: number; questions: packet.Question[] } {
    // dns-packet encodes the response code from the low four bits of `flags` only.
    const flags = packet.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & packet.RECURSION_DESIRED) | packet.RECURSION_AVAILABLE | (RCODES[rcode] ?? 2);
    return { id: query.id ?? 0, type: 'response', flags, questions: query.questions ?? [] };
  }

  /** The largest UDP answer this client accepts: 512 bytes, or its EDNS size (at most 4,096). */
  private udpLimit(query: packet.DecodedPacket): number {
    const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    return Math.min(MAX_UDP_PAYLOAD, Math.max(512, opt?.udpPayloadSize ?? 512));
  }

  /** The reply without records and with TC set: the client asks again over TCP. */
  private truncated(query: packet.DecodedPacket, rcode: string): Buffer {
    this.stats.truncated++;
    const header = this.header(query, rcode);
    return packet.encode({ ...header, flags: header.flags | packet.TRUNCATED_RESPONSE } as unknown as packet.Packet);
  }

  /** Relays a query outside the zone to the upstreams in turn; SERVFAIL when none answers. */
  private async forward(msg: Buffer, query: packet.DecodedPacket, type: string, transport: 'udp' | 'tcp'): Promise<Buffer> {
    if (this.forwardsInFlight >= MAX_FORWARDS_IN_FLIGHT) {
      this.stats.forwardsShed++;
      this.count(type, 'SERVFAIL');
      return this.encode(query, { rcode: 'SERVFAIL' }, transport);
    }
    this.forwardsInFlight++;
    try {
      return await this.forwardNow(msg, query, type, transport);
    } finally {
      this.forwardsInFlight--;
    }
  }

  private async forwardNow(msg: Buffer, query: packet.DecodedPacket, type: string, transport: 'udp' | 'tcp'): Promise<Buffer> {
    for (const upstream of this.options.upstreams) {
      try {
        const reply = await this.ask(upstream, msg);
        this.count(type, 'FORWARDED');
        // An upstream answer larger than this client accepts goes back truncated (never amplified).
        if (transport === 'udp' && reply.length > this.udpLimit(query)) return this.truncated(query, 'NOERROR');
        return reply;
      } catch (err) {
        this.stats.forwardErrors++;
        this.options.logger?.debug({ upstream, err: err instanceof Error ? err.message : String(err) }, 'DNS upstream failed');
      }
    }
    this.count(type, 'SERVFAIL');
    return this.encode(query, { rcode: 'SERVFAIL' }, transport);
  }

  private ask(upstream: string, msg: Buffer): Promise<Buffer> {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(upstream);
    const host = m?.[1] ?? upstream;
    const port = Number(m?.[2] ?? 53);
    return new Promise((resolve, reject) => {
      const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`no answer from ${upstream} within ${this.options.upstreamTimeoutMs} ms`));
      }, this.options.upstreamTimeoutMs);
      socket.on('error', (err) => {
        clearTimeout(timer);
        socket.close();
        reject(err);
      });
      socket.on('message', (reply) => {
        if (reply.length < 2 || reply.readUInt16BE(0) !== msg.readUInt16BE(0)) return;
        clearTimeout(timer);
        socket.close();
        resolve(reply);
      });
      socket.send(msg, port, host);
    });
  }
}
