/**
 * The states behind the committed wire test vectors (test/vectors/crdt-v1.json). Changing what
 * these build, or how they encode, is a wire-format change: regenerate the file deliberately with
 * `node --import ./dist/all/src/polyfills.js dist/all/test/helpers/crdt-vectors.js > test/vectors/crdt-v1.json`
 * after `npx tsc -p . --outDir dist/all` — and bump the format version if old decoders would misread the new bytes.
 */
import { AWSet, DWFlag, EWFlag, LWWRegister, MVRegister, ORMap, encodeCrdt, type CausalCrdt } from '../../src/crdt/index.js';

export function vectorStates(): Record<string, CausalCrdt<unknown, unknown>> {
  const ew = new EWFlag();
  ew.enable('node-a');
  const dw = new DWFlag();
  dw.disable('node-a');
  dw.disable('node-b');
  const lww = new LWWRegister();
  lww.write('node-a', { ts: 1_700_000_000_000_000, actor: 'node-a' }, { ip: '198.18.0.1', up: true, n: -3.5 });
  const mv = new MVRegister();
  mv.write('node-a', 'x');
  mv.join(new MVRegister().write('node-b', Uint8Array.of(0xde, 0xad)));
  const set = new AWSet();
  set.add('node-a', 'e1');
  set.add('node-b', 'e2');
  set.remove('node-a', 'e1');
  const overlay = new ORMap();
  const marker = { ts: 1_700_000_000_123_000, actor: 'agent-1' };
  overlay.mutate('agent-1', (m) =>
    m.map('44.128.0.1', (e) => {
      e.lww('agentIp').write(marker, '198.18.0.1');
      e.lww('vtepMac').write(marker, '70:b3:d5:80:00:01');
      e.lww('subnet').write(marker, '9.0.0.0/24');
      e.lww('subnet6').write(marker, 'fd01:b::/80');
      e.lww('nodeId').write(marker, 'agent-1');
    }),
  );
  overlay.mutate('agent-2', (m) => {
    m.map('44.128.0.2', (e) => e.lww('agentIp').write({ ts: 5, actor: 'agent-2' }, '198.18.0.2'));
    m.ewflag('enabled').enable();
    m.awset('tags').add('gpu');
  });
  // A context with a gap: an out-of-order dot sits in the cloud.
  const gap = new AWSet();
  gap.join(new AWSet().add('node-z', 'only'));
  const later = new AWSet();
  later.add('node-q', 'a');
  later.add('node-q', 'b');
  const second = later.clone();
  const delta = second.add('node-q', 'c');
  gap.join(delta);
  return { ewflag: ew, dwflag: dw, lww, mvreg: mv, awset: set, ormap: overlay, cloud: gap, empty: new ORMap() };
}

export function vectorHex(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, state] of Object.entries(vectorStates())) out[name] = Buffer.from(encodeCrdt(state)).toString('hex');
  return out;
}

if (process.argv[1]?.endsWith('crdt-vectors.js')) process.stdout.write(`${JSON.stringify(vectorHex(), null, 2)}\n`);
