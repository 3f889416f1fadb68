// Stands in for `nft -i` in unit tests (argv[2] says how): "silent" reads its input and never
// answers; "exit" exits at once; "ok" answers every marker line as nft does (an error block for
// the table that does not exist) and refuses lines holding "bad". Ends by itself after 30 s.
// Listings in "ok": table "present" is printed at once; table "split" prints all but its last
// line, and that line only 50 ms after the next marker's error (the pipes' order reversed); any
// other table does not exist.
import { createInterface } from 'node:readline';

const mode = process.argv[2];
if (mode === 'exit') process.exit(3);
setTimeout(() => process.exit(0), 30_000).unref();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (mode !== 'ok') return;
  const marker = /^list table ip (lashup_marker_\d+)$/.exec(line);
  const listing = /^list table (ip6?) (\w+)$/.exec(line);
  if (marker !== null) process.stderr.write(`Error: No such file or directory\n${line}\n${' '.repeat(14)}${'^'.repeat(marker[1].length)}\n`);
  else if (listing?.[2] === 'present') process.stdout.write(`table ${listing[1]} present {\n\tchain a {\n\t\tcounter packets 3 bytes 180\n\t}\n}\n`);
  else if (listing?.[2] === 'split') {
    process.stdout.write(`table ${listing[1]} split {\n\tchain a {\n\t}\n`);
    setTimeout(() => process.stdout.write('}\n'), 50);
  } else if (listing !== null) process.stderr.write(`Error: No such file or directory\n${line}\n${' '.repeat(14)}^^^\n`);
  else if (line.includes('bad')) process.stderr.write(`Error: syntax error, unexpected bad\n${line}\n^^^\n`);
});
