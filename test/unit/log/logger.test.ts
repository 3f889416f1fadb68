import t from 'tap';
import { createLogger, componentLogger, silentLogger } from '../../../src/log/index.js';

function capture(): { lines: Record<string, unknown>[]; stream: { write(line: string): void } } {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

t.test('a component child carries its component name on every line', async (t) => {
  const { lines, stream } = capture();
  const root = createLogger({ level: 'debug', destination: stream, base: { node: 'agent-1' } });
  componentLogger(root, 'kv').info({ key: 'overlay/dcos' }, 'applied delta');
  root.debug('root line');
  t.equal(lines.length, 2);
  t.match(lines[0], { component: 'kv', node: 'agent-1', key: 'overlay/dcos', msg: 'applied delta', level: 30 });
  t.notOk('component' in (lines[1] as object));
});

t.test('level comes from options, then LASHUP_LOG_LEVEL, then info', async (t) => {
  const saved = process.env['LASHUP_LOG_LEVEL'];
  t.teardown(() => {
    if (saved === undefined) delete process.env['LASHUP_LOG_LEVEL'];
    else process.env['LASHUP_LOG_LEVEL'] = saved;
  });
  const { stream } = capture();
  delete process.env['LASHUP_LOG_LEVEL'];
  t.equal(createLogger({ destination: stream }).level, 'info');
  process.env['LASHUP_LOG_LEVEL'] = 'warn';
  t.equal(createLogger({ destination: stream }).level, 'warn');
  t.equal(createLogger({ destination: stream, level: 'trace' }).level, 'trace');
  process.env['LASHUP_LOG_LEVEL'] = 'loud';
  t.throws(() => createLogger({ destination: stream }), /LASHUP_LOG_LEVEL="loud" is not a level; valid: fatal, error/);
  process.env['LASHUP_LOG_LEVEL'] = '';
  t.equal(createLogger({ destination: stream }).level, 'info');
  delete process.env['LASHUP_LOG_LEVEL'];
  t.equal(createLogger().level, 'info', 'the default destination is standard error');
});

t.test('the silent logger writes nothing', async (t) => {
  t.equal(silentLogger().level, 'silent');
});
