import t from 'tap';
import { libp2pLogger, SILENT_LOGGER } from '../../../src/net/libp2p-logger.js';

t.test('without DEBUG libp2p gets one silent logger for every component and scope', async (t) => {
  for (const env of [undefined, '', '  ']) {
    const logger = libp2pLogger(env);
    t.ok(logger, `a logger is given for DEBUG=${JSON.stringify(env)}`);
    const log = logger?.forComponent('libp2p:connection');
    t.equal(log, SILENT_LOGGER);
    t.equal(log?.enabled, false);
    t.equal(log?.newScope('outbound'), SILENT_LOGGER, 'a scope allocates nothing');
    t.doesNotThrow(() => {
      log?.('dialing %p', 'peer');
      log?.error('failed %e', new Error('x'));
      log?.trace('frame %d', 1);
    });
  }
});

t.test('with DEBUG set libp2p keeps its own logger, so its debug output can be turned on', async (t) => {
  t.equal(libp2pLogger('libp2p:*'), undefined);
  t.equal(libp2pLogger('lashup'), undefined);
});
