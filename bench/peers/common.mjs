// Shared by segment.mjs and rudderstack.mjs: reading the NDJSON file, the
// event routing every platform does before a destination's mapping runs
// (event name, consent), the helpers neither mapping language can express
// (money in minor units from decimal text, SHA-256, UTC time to the second,
// a URL's query parameter), and the timing harness.
//
// The rules are those of docs/button-0.1.0.md; each helper says where it
// falls short of the engine on malformed input (the peers do not validate:
// they map, and a value they cannot convert is left out of the body).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

// --- arguments and input ---------------------------------------------------

// parseArgs reads `FILE [--dump N] [--seconds S]`.
export function parseArgs(argv = process.argv.slice(2)) {
  const opts = { file: '', dump: 0, seconds: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dump') opts.dump = Number(argv[++i]);
    else if (a === '--seconds') opts.seconds = Number(argv[++i]);
    else if (!a.startsWith('--') && !opts.file) opts.file = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.file || !(opts.dump >= 0) || !(opts.seconds > 0)) {
    throw new Error('usage: node SCRIPT FILE [--dump N] [--seconds S]');
  }
  return opts;
}

// loadLines reads every non-empty line of the NDJSON file into memory, as
// text: JSON.parse is part of the timed work (bytes in to bytes out).
export function loadLines(path) {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

// --- routing (before the mapping, on every platform) -----------------------

// normalizeName: trim, lower-case, runs of spaces, - and _ become one _.
export function normalizeName(s) {
  return s.trim().toLowerCase().replace(/[\s_-]+/g, '_');
}

// routable: a track event (no type counts as track) named Order Completed
// after normalisation, with advertising consent: the first of the three
// paths that holds a boolean decides; none is a denial.
export function routable(ev) {
  if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) return false;
  if (ev.type !== undefined && ev.type !== 'track') return false;
  const name = ev.event;
  if (typeof name !== 'string') return false;
  if (name !== 'Order Completed' && normalizeName(name) !== 'order_completed') return false;
  const c = ev.context?.consent;
  for (const v of [c?.advertising, c?.categories?.advertising, c?.canonical?.marketing]) {
    if (typeof v === 'boolean') return v;
  }
  return false;
}

// --- helpers the mapping languages cannot express --------------------------

const EXP0 = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);
const EXP3 = new Set(['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND']);

// exponent: the ISO 4217 minor-unit exponent of an (upper-cased) code; 2
// for every other code, and for a missing one.
export function exponent(code) {
  return EXP0.has(code) ? 0 : EXP3.has(code) ? 3 : 2;
}

const PLAIN = /^(\d+)(?:\.(\d+))?$/;
const NUMBER = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/;

// minorUnits converts a money value into integer minor units with exponent
// exp, from its decimal digits, never through a float: 1.005 with exponent
// 2 is 101 (1.005 * 100 in floating point is 100.49999999999999). A JSON
// number is taken as the shortest decimal text that round-trips it
// (String(n): what JSON.parse kept of the text as written, so 1.005 stays
// "1.005"; exponent notation such as 1e-7 is handled); a string must be a
// plain decimal ("25.50"). Rounds half away from zero. Returns undefined
// for anything else (negative, "abc", objects, beyond 2^53 minor units).
// Unlike the engine it cannot see digits JSON.parse already dropped (more
// than 17 significant digits).
export function minorUnits(v, exp) {
  let m;
  if (typeof v === 'number') m = NUMBER.exec(String(v));
  else if (typeof v === 'string') m = PLAIN.exec(v);
  if (!m) return undefined;
  const digits = m[1] + (m[2] ?? '');
  // value = digits * 10^(e - frac digits); minor = value * 10^exp
  const shift = exp + (m[3] ? Number(m[3]) : 0) - (m[2] ? m[2].length : 0);
  let n;
  if (shift >= 0) {
    n = Number(digits + '0'.repeat(shift));
  } else {
    const keep = digits.length + shift;
    n = keep > 0 ? Number(digits.slice(0, keep)) : 0;
    if (keep >= 0 && digits.charCodeAt(keep) >= 53 /* '5' */) n++;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}

// sha256Hex: hex SHA-256 of the UTF-8 text (the caller trims and lower-cases
// the email where its language can).
export function sha256Hex(s) {
  return createHash('sha256').update(s).digest('hex');
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

// utcSeconds re-writes an RFC 3339 time (any offset, any fraction, t and z
// in either case) in UTC as 2006-01-02T15:04:05Z, fractional seconds
// dropped, not rounded. Returns undefined when the text is not RFC 3339.
// (Date.parse is laxer than the engine on impossible dates such as Feb 30,
// and the result may leave the four-digit years.)
export function utcSeconds(ts) {
  if (typeof ts !== 'string' || !RFC3339.test(ts)) return undefined;
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms).toISOString().slice(0, 19) + 'Z';
}

// urlQuery: the first value of a query parameter of a URL, or undefined
// when the URL is absent or has no (non-empty) such parameter.
export function urlQuery(url, name) {
  if (typeof url !== 'string') return undefined;
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const h = url.indexOf('#', q);
  const v = new URLSearchParams(h < 0 ? url.slice(q + 1) : url.slice(q + 1, h)).get(name);
  return v === null || v === '' ? undefined : v;
}

// --- harness ---------------------------------------------------------------

// run maps the file with mapLine (text in, body text or null out; sync or
// async) and either prints the first N bodies (--dump N, one line per
// event, null when not mapped) or times it: one warm-up pass over the file,
// then whole passes until --seconds have gone, and prints
// "ENGINE events/s us/event".
export async function run(engine, mapLine, { isAsync = false } = {}) {
  const opts = parseArgs();
  const lines = loadLines(opts.file);
  if (opts.dump > 0) {
    const out = [];
    for (const line of lines.slice(0, opts.dump)) out.push((await mapLine(line)) ?? 'null');
    process.stdout.write(out.join('\n') + '\n');
    return;
  }
  let mapped = 0;
  for (const line of lines) if ((await mapLine(line)) != null) mapped++;
  if (mapped === 0) throw new Error(`no event of ${opts.file} maps to a purchase`);

  const budget = BigInt(Math.round(opts.seconds * 1e9));
  let n = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  if (isAsync) {
    while (elapsed < budget) {
      for (let i = 0; i < lines.length; i++) sink += (await mapLine(lines[i]))?.length ?? 0;
      n += lines.length;
      elapsed = process.hrtime.bigint() - start;
    }
  } else {
    while (elapsed < budget) {
      for (let i = 0; i < lines.length; i++) sink += mapLine(lines[i])?.length ?? 0;
      n += lines.length;
      elapsed = process.hrtime.bigint() - start;
    }
  }
  if (sink === 0) throw new Error('empty bodies');
  const secs = Number(elapsed) / 1e9;
  console.log(`${engine} ${Math.round(n / secs)} ${((secs * 1e6) / n).toFixed(3)}`);
}
