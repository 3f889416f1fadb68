// Loaded first by every entry point (CLI, daemon, tests, benchmarks).
//
// libp2p 3 and its helpers (it-queue, yamux, mortice) call Promise.withResolvers, which Node
// only ships from version 22. Without it `createLibp2p` throws "Promise.withResolvers is not a
// function" on Node 20, so define it here before anything imports libp2p.
export {};

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const promiseCtor = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof promiseCtor.withResolvers !== 'function') {
  promiseCtor.withResolvers = function withResolvers<T>(): Resolvers<T> {
    let resolve!: Resolvers<T>['resolve'];
    let reject!: Resolvers<T>['reject'];
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
