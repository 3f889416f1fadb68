import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import * as packet from 'dns-packet';
import { createLogger, type Logger } from '../../../src/log/index.js';
import { DnsServer, TaskCatalog, dnsLabel, inZone, parseTaskName, plainQuestionKey } from '../../../src/dns/index.js';

const ZONE = 'dcos.thisdcos.directory';

t.test('names: task names of the zone, case-insensitive', async (t) => {
  t.same(parseTaskName('Web.Marathon.ContainerIP.dcos.thisdcos.directory.', ZONE), { task: 'web', framework: 'marathon', kind: 'containerip' });
  t.equal(parseTaskName('web.marathon.other.dcos.thisdcos.directory', ZONE), undefined);
  t.equal(parseTaskName('a.web.marathon.agentip.dcos.thisdcos.directory', ZONE), undefined);
  t.equal(parseTaskName('web.marathon.agentip.example.com', ZONE), undefined);
  t.ok(inZone(ZONE, ZONE) && inZone(`x.${ZONE}`, ZONE) && !inZone('example.com', ZONE));
  t.equal(dnsLabel('My_Task.1'), 'my-task-1');
});

function catalog(): TaskCatalog {
  const c = new TaskCatalog();
  c.replace(
    new Map([
      ['a1', [{ framework: 'marathon', task: 'web', ips: ['9.0.0.2', 'fd01:b::2'], agentIp: '192.0.2.11' }]],
      [
        'a2',
        [
          { framework: 'marathon', task: 'web', ips: ['9.0.1.2'], agentIp: '192.0.2.12' },
          { framework: 'marathon', task: 'hostnet', ips: [], agentIp: '192.0.2.12' },
        ],
      ],
    ]),
  );
  return c;
}

t.test('the catalog: several tasks per name, autoip falls back to the agent, down agents withheld', async (t) => {
  const c = catalog();
  const up = () => false;
  t.same(c.resolve('web', 'marathon', 'containerip', 4, up), ['9.0.0.2', '9.0.1.2']);
  t.same(c.resolve('web', 'marathon', 'containerip', 6, up), ['fd01:b::2']);
  t.same(c.resolve('web', 'marathon', 'agentip', 4, up), ['192.0.2.11', '192.0.2.12']);
  t.same(c.resolve('hostnet', 'marathon', 'autoip', 4, up), ['192.0.2.12'], 'autoip: the agent when the task has no container address');
  t.same(c.resolve('web', 'marathon', 'autoip', 4, up), ['9.0.0.2', '9.0.1.2']);
  t.same(
    c.resolve('web', 'marathon', 'containerip', 4, (a) => a === 'a2'),
    ['9.0.0.2'],
    "a down agent's records are withheld",
  );
  t.equal(
    c.resolve('hostnet', 'marathon', 'agentip', 4, (a) => a === 'a2'),
    undefined,
    'a name only down agents hold does not exist for now',
  );
  t.same(c.resolve('hostnet', 'marathon', 'containerip', 4, up), [], 'a name without an address of the kind: no data');
  t.equal(c.resolve('nope', 'marathon', 'containerip', 4, up), undefined);
  t.equal(c.size, 3);
});

async function serve(t: Test, upstreams: string[] = [], logger?: Logger): Promise<DnsServer> {
  const server = new DnsServer({
    listen: ['127.0.0.1'],
    port: 0,
    zone: ZONE,
    ttlSeconds: 5,
    catalog: catalog(),
    down: () => false,
    upstreams,
    upstreamTimeoutMs: 300,
    ...(logger === undefined ? {} : { logger }),
  });
  await server.listen();
  t.teardown(() => server.close());
  return server;
}

function ask(port: number, message: Buffer, host = '127.0.0.1'): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, 2000);
    socket.on('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(message, port, host);
  });
}

type Decoded = { id?: number; rcode?: string; flags?: number; answers?: { data?: unknown; ttl?: number; type?: string }[]; authorities?: { type?: string }[] };
const decode = (b: Buffer | undefined): Decoded => packet.decode(b as Buffer) as unknown as Decoded;

const query = (name: string, type: string, extra: Partial<packet.Packet> = {}): Buffer =>
  packet.encode({ id: 4242, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }], ...extra } as packet.Packet);

t.test('the server answers the zone, NXDOMAIN with an SOA, refuses ANY, answers garbage with FORMERR or not at all', async (t) => {
  const server = await serve(t);
  const a = decode(await ask(server.port, query(`web.marathon.containerip.${ZONE}`, 'A')));
  t.equal(a.id, 4242);
  t.equal(a.rcode, 'NOERROR');
  t.same((a.answers ?? []).map((x) => x.data).sort(), ['9.0.0.2', '9.0.1.2'], 'every task of the name');
  t.equal(a.answers?.[0]?.ttl, 5);
  const aaaa = decode(await ask(server.port, query(`WEB.marathon.containerip.${ZONE}`, 'AAAA')));
  t.same(
    (aaaa.answers ?? []).map((x) => x.data),
    ['fd01:b::2'],
    'AAAA, case-insensitive',
  );
  const nx = decode(await ask(server.port, query(`nope.marathon.containerip.${ZONE}`, 'A')));
  t.equal(nx.rcode, 'NXDOMAIN');
  t.equal(nx.authorities?.[0]?.type, 'SOA', 'with the SOA');
  const any = decode(await ask(server.port, query(`web.marathon.containerip.${ZONE}`, 'ANY')));
  t.equal(any.rcode, 'REFUSED');
  const garbage = await ask(server.port, Buffer.from('0123456789abcdefghij'));
  t.equal(garbage === undefined ? 'dropped' : decode(garbage).rcode, 'FORMERR', 'a header with garbage after it: FORMERR');
  t.equal(await ask(server.port, Buffer.from([1, 2, 3])), undefined, 'less than a header: dropped');
  const sender = createSocket('udp4');
  for (let i = 0; i < 200; i++)
    await new Promise<void>((resolve) => sender.send(Buffer.from(Array.from({ length: (i % 40) + 1 }, (_, j) => (i * 31 + j * 7) & 255)), server.port, '127.0.0.1', () => resolve()));
  sender.close();
  t.ok(server.stats.malformed > 0, 'counted');
  const again = decode(await ask(server.port, query(`web.marathon.agentip.${ZONE}`, 'A')));
  t.equal(again.rcode, 'NOERROR', 'and it still answers');
  t.equal(server.stats.queries['A']?.['NOERROR'], 2);
});

t.test('answers larger than the client allows are truncated; TCP gets them whole', async (t) => {
  const c = new TaskCatalog();
  c.replace(new Map([['a1', Array.from({ length: 60 }, (_, i) => ({ framework: 'f', task: 'big', ips: [`10.0.0.${i + 1}`], agentIp: '192.0.2.1' }))]]));
  const server = new DnsServer({ listen: ['127.0.0.1'], port: 0, zone: ZONE, ttlSeconds: 5, catalog: c, down: () => false, upstreams: [], upstreamTimeoutMs: 300 });
  await server.listen();
  t.teardown(() => server.close());
  const udp = await ask(server.port, query(`big.f.containerip.${ZONE}`, 'A'));
  t.ok(udp !== undefined && udp.length <= 512, 'no more than 512 bytes over UDP');
  t.ok((decode(udp).flags ?? 0) & packet.TRUNCATED_RESPONSE, 'TC set');
  const tcp = await new Promise<Buffer>((resolve) => {
    const socket = connect(server.port, '127.0.0.1');
    const q = query(`big.f.containerip.${ZONE}`, 'A');
    const framed = Buffer.alloc(2 + q.length);
    framed.writeUInt16BE(q.length, 0);
    q.copy(framed, 2);
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        socket.destroy();
        resolve(got.subarray(2));
      }
    });
    socket.write(framed);
  });
  t.equal(decode(tcp).answers?.length, 60, 'over TCP, every record');
});

t.test('names outside the zone go upstream; SERVFAIL when no upstream answers', async (t) => {
  const upstream = createSocket('udp4');
  await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
  t.teardown(() => upstream.close());
  upstream.on('message', (msg, rinfo) => {
    const q = packet.decode(msg);
    upstream.send(
      packet.encode({
        id: q.id,
        type: 'response',
        flags: packet.RECURSION_AVAILABLE,
        questions: q.questions,
        answers: [{ name: q.questions?.[0]?.name ?? '', type: 'A', ttl: 60, data: '203.0.113.7' }],
      } as packet.Packet),
      rinfo.port,
      rinfo.address,
    );
  });
  const server = await serve(t, [`127.0.0.1:${upstream.address().port}`]);
  const fwd = decode(await ask(server.port, query('example.com', 'A')));
  t.same(
    fwd.answers?.map((x) => x.data),
    ['203.0.113.7'],
    "the upstream's answer",
  );
  t.equal(fwd.id, 4242);
  const down = await serve(t, ['127.0.0.1:9']);
  const fail = decode(await ask(down.port, query('example.com', 'A')));
  t.equal(fail.rcode, 'SERVFAIL', 'no upstream: SERVFAIL');
  t.ok(down.stats.forwardErrors >= 1, 'counted');
});

t.test('extra addresses (bridge gateways) come and go on the same port; those that cannot be bound yet are returned', async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) } });
  const server = await serve(t, [], logger);
  // 127.0.0.2 is on the loopback device of every Linux host; 192.0.2.1 (TEST-NET-1) on none of this machine's.
  const failed = await server.setExtraListen(['127.0.0.2', '192.0.2.1', '127.0.0.1']);
  t.same(
    failed.map((f) => f.host),
    ['192.0.2.1'],
    'an address the host does not have is returned, to be retried',
  );
  t.match(failed[0]?.error, /EADDRNOTAVAIL/);
  t.same(await server.setExtraListen(['127.0.0.2', '192.0.2.1']).then((f) => f.map((x) => x.host)), ['192.0.2.1'], 'and again on a retry');
  t.same(
    lines.filter((l) => l.level >= 40).map((l) => l.msg),
    [],
    'a failed bind is returned, not also logged as a socket error at each retry (the caller reports the wait once)',
  );
  t.same(server.listening, ['127.0.0.1', '127.0.0.2'], 'the configured address is not bound twice');
  t.equal(decode(await ask(server.port, query(`web.marathon.containerip.${ZONE}`, 'A'), '127.0.0.2')).rcode, 'NOERROR', 'answered on the extra address');
  t.same(await server.setExtraListen(['127.0.0.2']), [], 'asking again binds nothing new');
  t.same(await server.setExtraListen([]), []);
  t.same(server.listening, ['127.0.0.1'], 'a gateway no longer leased is let go');
  t.equal(await ask(server.port, query(`web.marathon.containerip.${ZONE}`, 'A'), '127.0.0.2'), undefined, 'nothing answers there any more');
});

t.test('cached answers: the question echoed as asked, a new catalog seen at once, invalidate() for membership changes', async (t) => {
  const c = catalog();
  let downAgent = '';
  const server = new DnsServer({ listen: ['127.0.0.1'], port: 0, zone: ZONE, ttlSeconds: 5, catalog: c, down: (a) => a === downAgent, upstreams: [], upstreamTimeoutMs: 300 });
  await server.listen();
  t.teardown(() => server.close());
  const name = `web.marathon.containerip.${ZONE}`;
  const first = decode(await ask(server.port, query(name, 'A', { id: 1 })));
  const again = decode(await ask(server.port, query(name, 'A', { id: 2 })));
  t.equal(again.id, 2, 'a cached answer carries the id of its query');
  t.same(again.answers, first.answers);
  const mixed = packet.decode((await ask(server.port, query('wEb.MaRaThOn.containerip.dcos.thisdcos.directory', 'A'))) as Buffer);
  t.equal(mixed.questions?.[0]?.name, 'wEb.MaRaThOn.containerip.dcos.thisdcos.directory', 'the question comes back in the case it was asked (resolvers randomise it)');
  t.equal(server.stats.queries['A']?.['NOERROR'], 3, 'hits are counted like misses');

  downAgent = 'a2';
  t.same((decode(await ask(server.port, query(name, 'A'))).answers ?? []).map((a) => a.data).sort(), ['9.0.0.2', '9.0.1.2'], 'until told, the cache answers as before');
  server.invalidate();
  t.same(
    (decode(await ask(server.port, query(name, 'A'))).answers ?? []).map((a) => a.data),
    ['9.0.0.2'],
    "after invalidate() the down agent's record is withheld",
  );
  c.replace(new Map([['a3', [{ framework: 'marathon', task: 'web', ips: ['9.0.2.2'], agentIp: '192.0.2.13' }]]]));
  t.same(
    (decode(await ask(server.port, query(name, 'A'))).answers ?? []).map((a) => a.data),
    ['9.0.2.2'],
    'a replaced catalog is answered at once',
  );
  c.replace(new Map());
  t.equal(decode(await ask(server.port, query(name, 'A'))).rcode, 'NXDOMAIN', 'and an emptied one');
});

t.test('plain question keys: only the plainest queries, read without decoding; everything else goes to the codec', async (t) => {
  const plain = query(`web.marathon.containerip.${ZONE}`, 'A');
  const key = plainQuestionKey(plain);
  t.ok(key?.startsWith('1'), 'recursion desired is part of the key');
  t.equal(plainQuestionKey(query(`WEB.marathon.containerip.${ZONE}`, 'A')) === key, false, 'the case as asked is part of the key');
  t.equal(plainQuestionKey(query(`web.marathon.containerip.${ZONE}`, 'AAAA')) === key, false, 'so is the type');
  t.not(plainQuestionKey(packet.encode({ id: 7, type: 'query', flags: 0, questions: [{ name: 'a.b', type: 'A' }] })), undefined);
  t.equal(plainQuestionKey(Buffer.concat([plain, Buffer.from([0])])), undefined, 'bytes after the question');
  t.equal(plainQuestionKey(plain.subarray(0, plain.length - 1)), undefined, 'cut short');
  t.equal(plainQuestionKey(query('a.b', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] } as Partial<packet.Packet>)), undefined, 'EDNS (an OPT record)');
  t.equal(plainQuestionKey(packet.encode({ id: 1, type: 'response', flags: 0, questions: [{ name: 'a.b', type: 'A' }] })), undefined, 'a response');
  t.equal(
    plainQuestionKey(
      packet.encode({
        id: 1,
        type: 'query',
        questions: [
          { name: 'a.b', type: 'A' },
          { name: 'c.d', type: 'A' },
        ],
      }),
    ),
    undefined,
    'two questions',
  );
  const pointer = Buffer.from(plain);
  pointer[12] = 0xc0;
  t.equal(plainQuestionKey(pointer), undefined, 'a compression pointer');
  const long = Buffer.from(plain);
  long[12] = 64;
  t.equal(plainQuestionKey(long), undefined, 'a label longer than 63');
  t.equal(plainQuestionKey(Buffer.alloc(12)), undefined, 'a bare header');
});

t.test('named VIPs: <name>.<framework>.l4lb.<zone> answers the VIP address while a task declares it', async (t) => {
  const server = await serve(t);
  const nx = decode(await ask(server.port, query(`web.marathon.l4lb.${ZONE}`, 'A')));
  t.equal(nx.rcode, 'NXDOMAIN', 'no VIP yet');
  const c = (server as unknown as { options: { catalog: TaskCatalog } }).options.catalog;
  const generation = c.generation;
  c.replaceVips([
    { name: 'web', framework: 'Marathon_X', ip: '11.0.0.1', ip6: 'fd01:c::1' },
    { name: 'db', framework: 'marathon', ip: '11.0.0.2' },
  ]);
  t.ok(c.generation > generation, 'a VIP change makes cached answers stale');
  const a = decode(await ask(server.port, query(`WEB.marathon-x.l4lb.${ZONE}`, 'A')));
  t.same(
    (a.answers ?? []).map((x) => x.data),
    ['11.0.0.1'],
    'the framework as a DNS label, case-insensitive',
  );
  const aaaa = decode(await ask(server.port, query(`web.marathon-x.l4lb.${ZONE}`, 'AAAA')));
  t.same(
    (aaaa.answers ?? []).map((x) => x.data),
    ['fd01:c::1'],
  );
  const nodata = decode(await ask(server.port, query(`db.marathon.l4lb.${ZONE}`, 'AAAA')));
  t.same([nodata.rcode, nodata.answers?.length ?? 0], ['NOERROR', 0], 'a VIP without an IPv6 address: NODATA, not NXDOMAIN');
  t.equal(c.vip('db', 'marathon')?.ip, '11.0.0.2');
});
