// Checks that body dumps (one JSON body per line, `null` for an event not
// mapped) are JSON-deep-equal line by line, for bench/compare.sh. The first
// file is the reference (our engine); none of its lines may be null, so
// that every compared event is a delivered purchase.
//
// Usage: node same.mjs LABEL=FILE LABEL=FILE...
// Prints "N events: LABEL, LABEL... equal to LABEL" or the first difference
// (exit status 1).

import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const dumps = process.argv.slice(2).map((arg) => {
  const at = arg.indexOf('=');
  const label = arg.slice(0, at);
  const lines = readFileSync(arg.slice(at + 1), 'utf8').split('\n').filter((l) => l !== '');
  return { label, bodies: lines.map((l) => JSON.parse(l)) };
});
if (dumps.length < 2) {
  console.error('usage: node same.mjs LABEL=FILE LABEL=FILE...');
  process.exit(2);
}
const [ref, ...others] = dumps;
const n = ref.bodies.length;
const fail = (msg) => {
  console.error(`same: ${msg}`);
  process.exit(1);
};
if (n === 0) fail(`${ref.label}: no bodies`);
ref.bodies.forEach((b, i) => {
  if (b === null) fail(`${ref.label}: event ${i + 1} was not delivered`);
});
for (const d of others) {
  if (d.bodies.length !== n) fail(`${d.label}: ${d.bodies.length} bodies, ${ref.label}: ${n}`);
  d.bodies.forEach((b, i) => {
    if (!isDeepStrictEqual(b, ref.bodies[i])) {
      fail(`event ${i + 1}: bodies differ\n  ${ref.label}: ${JSON.stringify(ref.bodies[i])}\n  ${d.label}: ${JSON.stringify(b)}`);
    }
  });
}
console.log(`${n} events: ${others.map((d) => d.label).join(', ')} equal to ${ref.label}`);
