import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { ApiServer, type ApiBackend, type ApiStats, type KvWatchEvent } from '../../../src/daemon/api.js';
import { ConflictError, MisdirectedError } from '../../../src/daemon/api-errors.js';
import { matchRoute } from '../../../src/daemon/api-router.js';

/** A stub backend: a map for the store, recorded calls, and failures on demand. */
function stub() {
  const store = new Map<string, unknown>([['overlay/dcos', { '44.128.0.1': { nodeId: 'a1' } }]]);
  const watchers = new Set<(e: KvWatchEvent) => void>();
  const calls: string[] = [];
  const metricsStats: ApiStats[] = [];
  let leaving = 0;
  const backend: ApiBackend = {
    status: () => ({ name: 'stub' }),
    members: () => [],
    kvGet: (key) => store.get(key),
    kvWatch(key, onEvent) {
      const w = (e: KvWatchEvent): void => {
        if (e.key === key) onEvent(e);
      };
      watchers.add(w);
      if (store.has(key)) onEvent({ key, value: store.get(key), initial: true });
      return () => watchers.delete(w);
    },
    routes: () => {
      throw new Error('boom');
    },
    allocations: () => ({ leases: [] }),
    release: (agent, force) => {
      calls.push(`release ${agent} ${force}`);
      if (agent === 'follower') return Promise.reject(new MisdirectedError('LASHUP_ERR_RAFT_NOT_LEADER', 'ask the leader'));
      return Promise.resolve({ agent, released: true });
    },
    usage: (network) => {
      throw new ConflictError('LASHUP_ERR_NOT_MASTER', `usage of ${network} runs on a master`);
    },
    prepareLeave: () => () => leaving++,
    metrics: (api) => {
      metricsStats.push({ ...api });
      return Promise.resolve(`lashup_stub_value 1\nlashup_api_requests_total ${api.requests}\n`);
    },
  };
  return { backend, store, watchers, calls, metricsStats, leaving: () => leaving };
}

async function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = { 'x-lashup-request': 'test' },
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function serve(t: { teardown(fn: () => unknown): void }, backend: ApiBackend): Promise<ApiServer> {
  const api = new ApiServer({ host: '127.0.0.1', port: 0, backend });
  await api.listen();
  t.teardown(() => api.close());
  return api;
}

t.test('store keys with "/" are reachable as path segments or escaped', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  for (const path of ['/v1/kv/overlay/dcos', '/v1/kv/overlay%2Fdcos']) {
    const reply = await send(api.port, 'GET', path);
    t.equal(reply.status, 200, path);
    t.match(JSON.parse(reply.body), { key: 'overlay/dcos', value: { '44.128.0.1': { nodeId: 'a1' } } });
  }
  const missing = await send(api.port, 'GET', '/v1/kv/overlay/none');
  t.equal(missing.status, 404);
  t.match(JSON.parse(missing.body), { code: 'LASHUP_ERR_NO_SUCH_KEY', message: /overlay\/none/ });
  t.equal((await send(api.port, 'GET', '/v1/kv/')).status, 404, 'no key is no route');
  t.equal((await send(api.port, 'GET', `/v1/kv/${'k'.repeat(600)}`)).status, 400, 'an over-long key is bad input');
  t.equal((await send(api.port, 'GET', '/v1/kv/overlay%zz')).status, 400, 'a malformed escape is bad input');
});

t.test('statuses come from the error types; other failures are 500 and counted', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  const wrongMethod = await send(api.port, 'POST', '/v1/status');
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers['allow'], 'GET');
  t.match(JSON.parse(wrongMethod.body), { code: 'LASHUP_ERR_METHOD_NOT_ALLOWED' });
  t.equal((await send(api.port, 'GET', '/v1/overlay/dcos/usage')).status, 409);
  const misdirected = await send(api.port, 'POST', '/v1/allocations/follower/release');
  t.equal(misdirected.status, 421);
  t.match(JSON.parse(misdirected.body), { code: 'LASHUP_ERR_RAFT_NOT_LEADER' });
  const crash = await send(api.port, 'GET', '/v1/routes');
  t.equal(crash.status, 500);
  t.match(JSON.parse(crash.body), { code: 'LASHUP_ERR_INTERNAL', message: 'boom' });
  t.equal(api.stats.serverErrors, 1);
  t.equal(api.stats.clientErrors, 3, '405, 409 and 421');
  t.equal((await send(api.port, 'GET', '/v2/anything')).status, 404);
});

t.test('release passes the agent and the force flag; a bad flag is refused before the backend', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  t.match(JSON.parse((await send(api.port, 'POST', '/v1/allocations/a2/release?force=1')).body), { agent: 'a2', released: true });
  await send(api.port, 'POST', '/v1/allocations/a%2F3/release');
  const bad = await send(api.port, 'POST', '/v1/allocations/a4/release?force=maybe');
  t.equal(bad.status, 400);
  t.match(JSON.parse(bad.body), { message: /force = "maybe" is not valid; expected 1, true, 0 or false/ });
  t.same(s.calls, ['release a2 true', 'release a/3 false']);
});

t.test('leave answers first, then starts leaving; metrics add the API counters', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  const reply = await send(api.port, 'POST', '/v1/leave');
  t.match(JSON.parse(reply.body), { leaving: true });
  t.equal(s.leaving(), 1);
  const metrics = await send(api.port, 'GET', '/metrics');
  t.match(metrics.body, /^lashup_stub_value 1\n/);
  t.match(metrics.body, /lashup_api_requests_total 2\n/, 'the backend is handed the API counters');
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/);
});

t.test('a watch streams the current value and changes until the client goes', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  const events: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: api.port, path: '/v1/kv/overlay/dcos?watch=true' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        events.push(chunk);
        if (events.length === 1) for (const w of s.watchers) w({ key: 'overlay/dcos', value: undefined, initial: false });
        else req.destroy();
      });
      res.on('close', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  t.match(events[0], /^event: value\ndata: \{"key":"overlay\/dcos","value":\{"44.128.0.1":\{"nodeId":"a1"\}\},"initial":true\}/);
  t.match(events[1], /^event: removed\ndata: \{"key":"overlay\/dcos","value":null,"initial":false\}/);
  // The server notices the closed connection on its side; the unsubscribe follows.
  for (let i = 0; i < 50 && s.watchers.size > 0; i++) await new Promise((r) => setImmediate(r));
  t.equal(s.watchers.size, 0, 'unsubscribed when the client closed');
  t.equal(api.stats.watchers, 0);
});

t.test('route patterns: parameters, trailing wildcards, wildcard placement', async (t) => {
  const routes = [
    { method: 'GET' as const, pattern: '/a/:x/b', handler: 1 },
    { method: 'GET' as const, pattern: '/k/*rest', handler: 2 },
  ];
  t.match(matchRoute(routes, 'GET', ['a', 'one', 'b']), { params: { x: 'one' } });
  t.equal(matchRoute(routes, 'GET', ['a', 'one']), undefined);
  t.equal(matchRoute(routes, 'GET', ['a', 'one', 'b', 'c']), undefined);
  t.match(matchRoute(routes, 'GET', ['k', 'x', 'y']), { params: { rest: 'x/y' } });
  t.throws(() => matchRoute([{ method: 'GET', pattern: '/*x/y', handler: 0 }], 'GET', ['p', 'y']), TypeError);
});

t.test('components add routes; a route registered twice is refused', async (t) => {
  const s = stub();
  const api = new ApiServer({
    host: '127.0.0.1',
    port: 0,
    backend: s.backend,
    routes: [{ method: 'GET', pattern: '/v1/things/:name', handler: (params, query) => ({ name: params['name'], verbose: query.get('verbose') }) }],
  });
  await api.listen();
  t.teardown(() => api.close());
  const reply = await send(api.port, 'GET', '/v1/things/a%2Fb?verbose=1');
  t.equal(reply.status, 200);
  t.same(JSON.parse(reply.body), { name: 'a/b', verbose: '1' });
  t.equal((await send(api.port, 'POST', '/v1/things/x')).status, 405, 'other methods: 405');
  t.throws(() => new ApiServer({ host: '127.0.0.1', port: 0, backend: s.backend, routes: [{ method: 'GET', pattern: '/v1/status', handler: () => 1 }] }), {
    code: 'LASHUP_ERR_API_ROUTE_TAKEN',
    message: /GET \/v1\/status is registered twice/,
  });
});

t.test('forged requests from browsers are refused: foreign Host (DNS rebinding), foreign Origin, simple state-changing requests', async (t) => {
  const s = stub();
  const api = await serve(t, s.backend);
  const own = `127.0.0.1:${api.port}`;
  const refused = async (method: string, path: string, headers: Record<string, string>, code: RegExp, why: string): Promise<void> => {
    const reply = await send(api.port, method, path, headers);
    t.equal(reply.status, 403, why);
    t.match(JSON.parse(reply.body), { code }, why);
  };
  for (const [method, path] of [
    ['POST', '/v1/allocations/a2/release'],
    ['POST', '/v1/leave'],
  ] as const) {
    await refused(method, path, { host: own, 'content-type': 'application/x-www-form-urlencoded' }, /SIMPLE_REQUEST/, `${path}: a simple form POST (what a page can send without preflight)`);
    await refused(method, path, { host: own, 'content-type': 'text/plain' }, /SIMPLE_REQUEST/, `${path}: text/plain`);
    await refused(method, path, { host: own, origin: 'http://evil.example', 'x-lashup-request': '1' }, /FORBIDDEN_ORIGIN/, `${path}: a foreign Origin, even with the header`);
    await refused(method, path, { host: `evil.example:${api.port}`, 'x-lashup-request': '1' }, /FORBIDDEN_HOST/, `${path}: a rebinding name in Host`);
  }
  await refused('GET', '/v1/status', { host: `rebind.example:${api.port}` }, /FORBIDDEN_HOST/, 'reads under a foreign name are refused too (DNS rebinding)');
  await refused('GET', '/v1/status', { host: '127.0.0.1:1' }, /FORBIDDEN_HOST/, 'another port');
  t.same(s.calls, [], 'the backend never saw a refused request');
  t.equal((await send(api.port, 'GET', '/v1/status', { host: own })).status, 200, 'a plain read by address works (curl, scrapers)');
  t.equal((await send(api.port, 'GET', '/v1/status', { host: `localhost:${api.port}` })).status, 200, 'localhost works');
  t.equal((await send(api.port, 'GET', '/v1/status', { host: own, origin: `http://${own}` })).status, 200, 'the same origin works');
  t.equal((await send(api.port, 'POST', '/v1/leave', { host: own, 'content-type': 'application/json' })).status, 200, 'a JSON POST works');
  t.equal((await send(api.port, 'POST', '/v1/allocations/a9/release', { host: own, 'x-lashup-request': 'cli' })).status, 200, 'a POST with the header works');
  t.equal(api.stats.clientErrors, 10, 'refusals are counted as client errors');
});

t.test('the unix socket: full access without token or guard, its mode and group set, stale files replaced, live ones refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lashup-apisock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'run', 'api.sock');
  writeFileSync(join(dir, 'placeholder'), '');
  const s = stub();
  const gid = process.getgid?.() ?? 0;
  const api = new ApiServer({ host: '127.0.0.1', port: 0, token: 'token-token-token-token', socketPath, socketMode: 0o660, socketGid: gid, backend: s.backend });
  await api.listen();
  const st = statSync(socketPath);
  t.equal(st.mode & 0o777, 0o660, 'mode 0660 with a group');
  t.equal(st.gid, gid, 'the group');
  const viaSocket = await new Promise<{ status: number }>((resolve, reject) => {
    const req = request({ socketPath, method: 'POST', path: '/v1/allocations/a1/release', headers: { host: 'anything' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(viaSocket.status, 200, 'over the socket: no token, no Host check, no header needed (no browser reaches it)');
  t.equal((await send(api.port, 'GET', '/v1/status')).status, 401, 'over TCP the same daemon wants the token');
  t.equal((await send(api.port, 'GET', '/v1/status', { 'x-lashup-request': '1', authorization: 'Bearer token-token-token-token' })).status, 200, 'and takes it');
  const second = new ApiServer({ host: '127.0.0.1', port: 0, socketPath, backend: s.backend });
  await t.rejects(second.listen(), { code: 'LASHUP_ERR_SOCKET_IN_USE' }, 'a live socket is not taken over');
  await api.close();
  t.notOk(existsSync(socketPath), 'closing removes the socket file');
  // A socket left by a daemon that died: a process listening on it, killed with SIGKILL.
  const { spawn } = await import('node:child_process');
  const dead = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", socketPath], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => dead.stdout?.once('data', () => resolve()));
  dead.kill('SIGKILL');
  await new Promise((resolve) => dead.once('exit', resolve));
  t.ok(statSync(socketPath).isSocket(), 'the dead process left its socket file');
  writeFileSync(join(dir, 'keep-me'), 'important');
  const third = new ApiServer({ host: '127.0.0.1', port: 0, socketPath, backend: s.backend });
  await third.listen();
  t.equal(statSync(socketPath).mode & 0o777, 0o600, 'a stale socket is replaced; default mode 0600');
  await third.close();
  const wrong = new ApiServer({ host: '127.0.0.1', port: 0, socketPath: join(dir, 'keep-me'), backend: s.backend });
  await t.rejects(wrong.listen(), { code: 'LASHUP_ERR_SOCKET_IN_USE', message: /is not a socket/ }, 'a path that is not a socket is never removed');
  t.equal(readFileSync(join(dir, 'keep-me'), 'utf8'), 'important');
});

t.test('the status page: served without the token like /metrics, its state and stream read-only; ui false serves none of it', async (t) => {
  const s = stub();
  const backend: ApiBackend = {
    ...s.backend,
    members: () => [{ name: 'a1', state: 'alive' }],
    usageSummary: () => [{ network: 'dcos', kind: 'cni', used: 1, capacity: 125 }],
    propagationBuckets: () =>
      Promise.resolve([
        { le: 0.01, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 1 },
      ]),
  };
  const api = new ApiServer({ host: '127.0.0.1', port: 0, token: 'token-token-token-token', backend });
  await api.listen();
  t.teardown(() => api.close());
  const page = await send(api.port, 'GET', '/ui', {});
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'none'/, 'nothing may load from elsewhere');
  t.match(page.body, /new EventSource\("\/ui\/events"\)/);
  t.notMatch(page.body, /<(script|link|img)[^>]+(src|href)="(https?:)?\/\//, 'no external resources');
  const state = await send(api.port, 'GET', '/ui/state', {});
  t.equal(state.status, 200);
  const body = JSON.parse(state.body) as Record<string, unknown>;
  t.same(body['members'], [{ name: 'a1', state: 'alive' }]);
  t.same(body['routes'], { error: 'boom' }, 'a view that fails is shown in its place, the others still are');
  t.same(body['usage'], [{ network: 'dcos', kind: 'cni', used: 1, capacity: 125 }]);
  t.same(body['propagation'], []);
  t.equal((await send(api.port, 'GET', '/v1/members', {})).status, 401, 'the API itself still needs the token');
  t.equal((await send(api.port, 'POST', '/ui', { authorization: 'Bearer token-token-token-token', 'x-lashup-request': 't' })).status, 405, 'the page takes no writes');
  t.equal((await send(api.port, 'GET', '/ui', { host: 'evil.example:80' })).status, 403, 'the rebinding guard still applies');

  const first = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: api.port, path: '/ui/events' }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (chunk: string) => {
        req.destroy();
        resolve(chunk);
      });
    });
    req.on('error', reject);
    req.end();
  });
  t.match(first, /^event: state\ndata: \{"status":\{"name":"stub"\}/);
  const metrics = await send(api.port, 'GET', '/metrics', {});
  t.match(metrics.body, /^lashup_api_requests_total \d+$/m);
  t.match(s.metricsStats.at(-1), { requests: Number, uiPages: Number, uiStateFailures: 0 }, 'the status page counts go to /metrics with the API counters');

  const off = new ApiServer({ host: '127.0.0.1', port: 0, token: 'token-token-token-token', backend, ui: false });
  await off.listen();
  t.teardown(() => off.close());
  t.equal((await send(off.port, 'GET', '/ui', {})).status, 401, 'with ui false, /ui is not open');
  t.equal((await send(off.port, 'GET', '/ui', { authorization: 'Bearer token-token-token-token' })).status, 404, 'and not served at all');
});
