/**
 * The warning a daemon logs when it did not start from the build's code cache: one stable code
 * for a broken install (missing, stale, unreadable), another for a cache V8 refused (another
 * Node or other flags), nothing when it was used or the daemon does not run from the bundle.
 */
import t from 'tap';
import { codeCacheWarning, DAEMON_NODE_FLAGS } from '../../../src/daemon/index.js';

t.test('used, or not run from the bundle: nothing to say', async (t) => {
  t.equal(codeCacheWarning('used'), undefined);
  t.equal(codeCacheWarning(undefined), undefined);
});

t.test('a broken install: LASHUP_ERR_CODE_CACHE_UNUSABLE, naming the state and the fix', async (t) => {
  for (const result of ['missing', 'stale', 'unreadable']) {
    const warning = codeCacheWarning(result);
    t.equal(warning?.code, 'LASHUP_ERR_CODE_CACHE_UNUSABLE', result);
    t.match(warning?.message, new RegExp(`is ${result}:`), `${result}: the message names it`);
    t.match(warning?.message, /Reinstall the package/, `${result}: and what to do`);
  }
});

t.test('rejected by V8: LASHUP_ERR_CODE_CACHE_REJECTED, naming this Node and the flags the build used', async (t) => {
  const warning = codeCacheWarning('rejected');
  t.equal(warning?.code, 'LASHUP_ERR_CODE_CACHE_REJECTED');
  t.match(warning?.message, process.version);
  t.match(warning?.message, DAEMON_NODE_FLAGS.join(' '));
});

t.test('an outcome this version does not know still warns, with the value', async (t) => {
  const warning = codeCacheWarning('eaten');
  t.equal(warning?.code, 'LASHUP_ERR_CODE_CACHE_UNUSABLE');
  t.match(warning?.message, '"eaten"');
});
