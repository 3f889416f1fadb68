// Stands in for `nft -i` in unit tests (argv[2] says how): "silent" reads its input and never
// answers; "exit" exits at once; "ok" answers every marker line as nft does (an error block for
// the table that does not exist) and refuses lines holding "bad". Ends by itself after 30 s.
import { createInterface } from 'node:readline';

const mode = process.argv[2];
if (mode === 'exit') process.exit(3);
setTimeout(() => process.exit(0), 30_000).unref();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (mode !== 'ok') return;
  const marker = /^list table ip (lashup_marker_\d+)$/.exec(line);
  if (marker !== null) process.stderr.write(`Error: No such file or directory\n${line}\n${' '.repeat(14)}${'^'.repeat(marker[1].length)}\n`);
  else if (line.includes('bad')) process.stderr.write(`Error: syntax error, unexpected bad\n${line}\n^^^\n`);
});
