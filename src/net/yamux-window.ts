/**
 * Yamux window updates at half a window instead of after every data frame.
 *
 * @chainsafe/libp2p-yamux 8.0.1 calls `sendWindowUpdate` after each data frame it receives and
 * sends an update whenever any credit was used: every gossip message, RPC request and response
 * costs a second frame the other way, each through noise, the private-network cipher and a
 * socket write of its own. In an idle Raft leader's profile the updates were 16 % of its busy
 * time; in a 60-node cluster they were about half the frames on the wire.
 *
 * The yamux specification leaves the timing to the receiver, and the other implementations
 * (hashicorp/yamux, go-yamux, rust-yamux since libp2p/rust-yamux#109) send an update only once
 * at least half of the receive window has been consumed. This applies the same rule to js-yamux
 * by holding its method back while an established stream still has more than half its window
 * free. Flow control is unchanged in kind: the sender still stops at a full window, and it is
 * credited again before it can get there (an update goes out once half the window, 128 KiB at
 * the start, has been used). Frames that carry flags (the SYN's ACK) and paused streams go to
 * the library's own method, as does the window's growth, which the library computes there.
 *
 * Written here rather than taken from a newer release: none of the library's releases up to
 * this one has the rule, and there is no option for it. Installed once, when libp2p's modules
 * load (src/net/libp2p.ts); the library's stream class is passed in so that this file loads
 * nothing itself.
 */

interface YamuxStreamLike {
  state: number;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

/** The library's stream class; its fields used here are private in its types. */
export interface YamuxStreamClass {
  prototype: object;
}

/** Updates held back and let through since the process started (tests read them). */
export const yamuxWindowStats = { held: 0, passed: 0 };

const installed = new WeakSet<object>();

/**
 * Installs the rule on `streamClass` (idempotent). `established` is the library's
 * StreamState.Established value.
 */
export function installYamuxWindowHysteresis(streamClass: YamuxStreamClass, established: number): void {
  const proto = streamClass.prototype as YamuxStreamLike;
  if (installed.has(proto)) return;
  installed.add(proto);
  const original = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function sendWindowUpdate(this: YamuxStreamLike): void {
    // Invariant: while held back, at least half the window is still free at the sender's end,
    // so a sender never waits for credit this rule withheld.
    if (this.state === established && this.recvWindowCapacity * 2 > this.recvWindow) {
      yamuxWindowStats.held++;
      return;
    }
    yamuxWindowStats.passed++;
    original.call(this);
  };
}
