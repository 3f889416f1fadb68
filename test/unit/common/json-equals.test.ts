import t from 'tap';
import { jsonEquals } from '../../../src/common/index.js';

t.test('structural equality of JSON values, key order and undefined properties aside', async (t) => {
  const wire = { agent: 'a1', vtepIp: '44.128.0.1', networks: { dcos: { subnet: '9.0.1.0/24', mesos: '9.0.1.0/25' } } };
  const disk = { networks: { dcos: { mesos: '9.0.1.0/25', subnet: '9.0.1.0/24' } }, vtepIp: '44.128.0.1', agent: 'a1' };
  t.notOk(JSON.stringify(wire) === JSON.stringify(disk), 'the texts differ (the old comparison said "changed")');
  t.ok(jsonEquals(wire, disk), 'equal');
  t.ok(jsonEquals({ a: 1, b: undefined }, { a: 1 }), 'an undefined property is absent');
  t.notOk(jsonEquals({ a: 1, b: 2 }, { a: 1 }));
  t.notOk(jsonEquals({ a: 1 }, { a: 1, b: null }), 'null is a value');
  t.notOk(jsonEquals([1, 2], [2, 1]), 'array order matters');
  t.notOk(jsonEquals([1], { 0: 1 }), 'an array is not an object');
  t.notOk(jsonEquals('1', 1));
  t.ok(jsonEquals(undefined, undefined));
  t.notOk(jsonEquals(null, {}));
});
