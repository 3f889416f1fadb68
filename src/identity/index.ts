export { signerFromSeed, signerFromLibp2pKey, PeerIdVerifier } from './ed25519.js';
export type { Signer, Verifier } from './ed25519.js';
