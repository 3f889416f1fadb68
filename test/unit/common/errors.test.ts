import t from 'tap';
import { LashupError, InvalidArgumentError, isLashupError, describeValue } from '../../../src/common/index.js';

t.test('LashupError carries a stable code, details and its class name', async (t) => {
  const err = new LashupError('LASHUP_ERR_EXAMPLE', 'example failed', { value: 3 });
  t.equal(err.code, 'LASHUP_ERR_EXAMPLE');
  t.same(err.details, { value: 3 });
  t.equal(err.name, 'LashupError');
  t.same(err.toJSON(), { code: 'LASHUP_ERR_EXAMPLE', message: 'example failed', details: { value: 3 } });
  t.ok(err instanceof Error);
});

t.test('a malformed code is refused', async (t) => {
  t.throws(() => new LashupError('bad code', 'x'), TypeError);
  t.throws(() => new LashupError('LASHUP_ERR_lower', 'x'), TypeError);
});

t.test('subclasses keep their own name and code', async (t) => {
  const err = new InvalidArgumentError('port 70000 is out of range; expected 1..65535', { port: 70000 });
  t.equal(err.name, 'InvalidArgumentError');
  t.equal(err.code, 'LASHUP_ERR_INVALID_ARGUMENT');
  t.ok(isLashupError(err));
  t.ok(isLashupError(err, 'LASHUP_ERR_INVALID_ARGUMENT'));
  t.notOk(isLashupError(err, 'LASHUP_ERR_OTHER'));
  t.notOk(isLashupError(new Error('plain')));
});

t.test('describeValue renders any value briefly and never throws', async (t) => {
  t.equal(describeValue('abc'), '"abc"');
  t.equal(describeValue(12), '12');
  t.equal(describeValue(10n), '10n');
  t.equal(describeValue(new Uint8Array(7)), '<7 bytes>');
  t.equal(
    describeValue(() => 1),
    '<function>',
  );
  t.equal(describeValue(Symbol('s')), 'Symbol(s)');
  t.equal(describeValue(undefined), 'undefined');
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  t.equal(describeValue(cyclic), '[object Object]');
  const long = describeValue('x'.repeat(500), 20);
  t.equal(long.length, 20);
  t.ok(long.endsWith('…'));
});
