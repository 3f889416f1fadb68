import t from 'tap';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { PeerIdVerifier, signerFromLibp2pKey, signerFromSeed } from '../../../src/identity/index.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

t.test("a node's signer is its libp2p peer id, and others verify it from the peer id alone", async (t) => {
  const key = await generateKeyPair('Ed25519');
  const signer = signerFromLibp2pKey(key);
  t.equal(signer.identity, peerIdFromPrivateKey(key).toString(), 'the identity is the peer id');
  const verifier = new PeerIdVerifier(2);
  const signature = signer.sign(bytes('row'));
  t.ok(verifier.verify(signer.identity, bytes('row'), signature), 'a good signature verifies');
  t.notOk(verifier.verify(signer.identity, bytes('rowX'), signature), 'another payload does not');
  t.notOk(verifier.verify(signerFromSeed(new Uint8Array(32).fill(7)).identity, bytes('row'), signature), "another identity's does not");
  t.notOk(verifier.verify(signer.identity, bytes('row'), signature.subarray(0, 63)), 'a truncated signature does not');
  t.notOk(verifier.verify('not-a-peer-id', bytes('row'), signature), 'an identity that is not a peer id never verifies');
  t.notOk(verifier.verify('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', bytes('row'), signature), 'nor a non-Ed25519 peer id');
  t.ok(verifier.verify(signer.identity, bytes('row'), signature), 'the cache stays bounded and still answers');
  t.notOk(verifier.verify(signer.identity, bytes('rox'), signature), 'a remembered signature does not vouch for another payload');
  for (let i = 0; i < 6; i++) t.ok(verifier.verify(signer.identity, bytes(`p${i}`), signer.sign(bytes(`p${i}`))), 'many signatures: the cache of good ones stays bounded');
});

t.test('a seed makes the same identity and signatures every time (the simulator relies on it)', async (t) => {
  const seed = new Uint8Array(32).map((_, i) => i);
  const a = signerFromSeed(seed);
  const b = signerFromSeed(seed);
  t.equal(a.identity, b.identity);
  t.same([...a.sign(bytes('x'))], [...b.sign(bytes('x'))], 'Ed25519 signatures are deterministic');
  t.throws(() => signerFromSeed(new Uint8Array(16)), /32 bytes/);
});
