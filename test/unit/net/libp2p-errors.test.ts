import t from 'tap';
import { mapLibp2pError, TransportErrorCode } from '../../../src/net/index.js';

t.test('libp2p failures map to stable codes with the likely cause named', async (t) => {
  const refused = mapLibp2pError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), '/ip4/127.0.0.1/tcp/1', '/x/1');
  t.equal(refused.code, TransportErrorCode.ConnectionRefused);

  const mismatch = mapLibp2pError(Object.assign(new Error('invalid nonce'), { name: 'EncryptionFailedError' }), '/ip4/127.0.0.1/tcp/2', 'connect');
  t.equal(mismatch.code, TransportErrorCode.HandshakeFailed);
  t.match(mismatch.message, /pre-shared key mismatch\? Check/);
  t.notMatch(mismatch.message, /overloaded/, 'no overload hint when nothing timed out');

  const slow = mapLibp2pError(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'EncryptionFailedError' }), '/ip4/127.0.0.1/tcp/3', 'connect');
  t.equal(slow.code, TransportErrorCode.HandshakeFailed);
  t.match(slow.message, /pre-shared key mismatch\?.*overloaded.*timed out/);
  t.match(slow.message, /\/ip4\/127\.0\.0\.1\/tcp\/3/, 'names the peer');

  const timeout = mapLibp2pError(new Error('The operation was aborted due to timeout'), '/ip4/127.0.0.1/tcp/4', '/lashup/sync/1');
  t.equal(timeout.code, TransportErrorCode.Timeout);
  t.match(timeout.message, /\/lashup\/sync\/1/);
});

t.test('a handshake failure reads its causes too: a timeout or a close wrapped by libp2p', async (t) => {
  const wrappedTimeout = mapLibp2pError(
    Object.assign(new Error('Encryption failed'), { name: 'EncryptionFailedError', cause: Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }) }),
    '/ip4/127.0.0.1/tcp/5',
    'connect',
  );
  t.equal(wrappedTimeout.code, TransportErrorCode.HandshakeFailed);
  t.match(wrappedTimeout.message, /overloaded.*timed out/, 'the timeout inside is named');

  const closed = mapLibp2pError(Object.assign(new Error('unexpected end of input'), { name: 'EncryptionFailedError' }), '/ip4/127.0.0.1/tcp/6', 'connect');
  t.equal(closed.code, TransportErrorCode.HandshakeFailed);
  t.match(closed.message, /pre-shared key mismatch\?.*overloaded peer.*closed the connection/, 'both causes named: the dialer cannot tell them apart');

  const decrypt = mapLibp2pError(Object.assign(new Error('invalid MAC'), { name: 'EncryptionFailedError' }), '/ip4/127.0.0.1/tcp/7', 'connect');
  t.notMatch(decrypt.message, /overloaded/, 'a message that did not decrypt is a key mismatch, not load');

  const loop = new Error('Encryption failed') as Error & { cause?: unknown };
  loop.cause = loop;
  t.equal(mapLibp2pError(loop, '/ip4/127.0.0.1/tcp/8', 'connect').code, TransportErrorCode.HandshakeFailed, 'a cause chain that loops ends');
});
