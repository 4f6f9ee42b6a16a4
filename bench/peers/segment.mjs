// The Button purchase of docs/button-0.1.0.md as a Segment Actions
// destination would write it: a mapping-kit mapping (the action's field
// defaults, evaluated per event by transform() from @segment/actions-core)
// and the action's perform code, plain JavaScript, for what mapping-kit
// cannot express.
//
// What is mapping-kit (the `mapping` object below):
//   - every read of the event (@path), the "first present" fall-backs
//     (nested @if: subtotal, else revenue, else total; user_id, else userId;
//     the three email paths; properties.btn_ref, else context.click_ids.btn_ref;
//     product_id, else sku), quantity's default of 1 (@if ... else: 1);
//   - currency upper-cased (@case upper);
//   - order_id and the user id as decimal text when they are numbers
//     (@template "{{...}}");
//   - line items (@arrayPath), the one-element category list ([ @path ]),
//     attributes with only the keys present (@if blank chains);
//   - absent keys left out (transform removes undefined).
// What is perform code (`perform` below, with helpers from common.mjs):
//   - total and line amounts in minor units from the decimal text, with the
//     currency's exponent, rounded half away from zero (mapping-kit has no
//     arithmetic at all: neither this nor amount x quantity);
//   - line total = amount x quantity, quantity "2" / 2.0 as an integer;
//   - email_sha256: SHA-256 of the trimmed, lower-cased email (node:crypto);
//   - purchase_date: the timestamp in UTC to the second (no time functions);
//   - btn_ref from the btn_ref query parameter of context.page.url when it is
//     in neither property (no URL parsing);
//   - customer left out when there is no user id (an @if can drop a key, but
//     the object is built here anyway, around the hash).
// Routing (track, event name, advertising consent) happens before the
// action runs, as Segment's subscription and consent settings do; here it is
// routable() from common.mjs, the same for every peer.
// Not done: the JSON-schema validation of the mapped payload that Segment's
// runtime runs between transform and perform (the engine's required/invalid
// field checks); leaving it out only makes this peer faster.
//
// Usage: node segment.mjs FILE [--dump N] [--seconds S]

import { createRequire } from 'node:module';
import { exponent, minorUnits, routable, run, sha256Hex, urlQuery, utcSeconds } from './common.mjs';

// The package's ESM build imports directories, which Node refuses; its
// CommonJS build (the one Segment's own runtime loads) works.
const { transform } = createRequire(import.meta.url)('@segment/actions-core');

const path = (p) => ({ '@path': p });
// first: the first non-blank of the paths (nested @if), as mapping-kit
// writes a fall-back. `blank` treats undefined, null and '' as absent.
const first = (...paths) =>
  paths.length === 1
    ? path(paths[0])
    : { '@if': { blank: path(paths[0]), then: path(paths[0]), else: first(...paths.slice(1)) } };
// firstMoney: the same with `exists` (undefined, null), since `blank`
// compares with != '' and would take a 0 for absent.
const firstMoney = (...paths) =>
  paths.length === 1
    ? path(paths[0])
    : { '@if': { exists: path(paths[0]), then: path(paths[0]), else: firstMoney(...paths.slice(1)) } };
// whenPresent: the value (or shape) only when the path is not blank.
const whenPresent = (p, then = path(p)) => ({ '@if': { blank: path(p), then } });

export const mapping = {
  order_id: { '@template': '{{properties.order_id}}' },
  amount: firstMoney('$.properties.subtotal', '$.properties.revenue', '$.properties.total'),
  currency: { '@case': { operator: 'upper', value: path('$.properties.currency') } },
  timestamp: path('$.timestamp'),
  btn_ref: first('$.properties.btn_ref', '$.context.click_ids.btn_ref'),
  page_url: path('$.context.page.url'),
  user_id: {
    '@if': {
      blank: path('$.user_id'),
      then: { '@template': '{{user_id}}' },
      else: whenPresent('$.userId', { '@template': '{{userId}}' }),
    },
  },
  email: first('$.traits.email', '$.context.traits.email', '$.properties.email'),
  products: {
    '@arrayPath': [
      '$.properties.products',
      {
        identifier: first('$.product_id', '$.sku'),
        quantity: { '@if': { exists: path('$.quantity'), then: path('$.quantity'), else: 1 } },
        price: path('$.price'),
        description: whenPresent('$.name'),
        sku: whenPresent('$.sku'),
        category: whenPresent('$.category', [path('$.category')]),
        attributes: {
          '@if': {
            blank: path('$.brand'),
            then: { brand: path('$.brand'), variant: whenPresent('$.variant') },
            else: whenPresent('$.variant', { variant: path('$.variant') }),
          },
        },
      },
    ],
  },
};

// perform: the action's perform code, from the mapped payload to the body
// it would send with request(url, { method: 'POST', json: body }).
export function perform(payload) {
  const currency = payload.currency;
  const exp = exponent(currency);
  const body = {
    order_id: payload.order_id,
    total: minorUnits(payload.amount, exp),
    currency,
    purchase_date: utcSeconds(payload.timestamp),
    btn_ref: payload.btn_ref ?? urlQuery(payload.page_url, 'btn_ref'),
  };
  if (payload.user_id) {
    body.customer = { id: payload.user_id };
    if (typeof payload.email === 'string') {
      body.customer.email_sha256 = sha256Hex(payload.email.trim().toLowerCase());
    }
  }
  body.line_items = (payload.products ?? []).map((p) => {
    const quantity = Number(p.quantity);
    const amount = minorUnits(p.price, exp);
    return {
      identifier: p.identifier,
      quantity,
      amount,
      total: amount === undefined ? undefined : amount * quantity,
      description: p.description,
      sku: p.sku,
      category: p.category,
      attributes: p.attributes,
    };
  });
  return body;
}

// mapLine: bytes in (the NDJSON line) to bytes out (the body's JSON).
export function mapLine(line) {
  const ev = JSON.parse(line);
  if (!routable(ev)) return null;
  return JSON.stringify(perform(transform(mapping, ev)));
}

await run('segment', mapLine);
