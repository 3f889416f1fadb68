export interface XSalsa20Stream {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array;
  final(): void;
  finalize(): void;
}
export default function xsalsa20(nonce: Uint8Array, key: Uint8Array): XSalsa20Stream;
