// The Button purchase of docs/button-0.1.0.md as a RudderStack
// json-template-engine program, compiled once with JsonTemplateEngine.create
// (the async form, as rudder-transformer's templates are) and evaluated per
// event with evaluate(event, bindings).
//
// The template language compiles to JavaScript and can call methods of the
// values it reads, so it expresses most of the mapping natively: every read
// and "first present" fall-back, order_id and the user id as decimal text
// (String), currency upper-cased, the email trimmed and lower-cased,
// quantity's default and "2" / 2.0 as an integer (Number), the line total as
// amount x quantity, the one-element category list, attributes with only
// the keys present, customer only with a user id (undefined keys are left
// out by JSON.stringify).
// Bindings ($.name, from common.mjs) for what it cannot express:
//   - $.minor: money in minor units from the decimal text with the
//     currency's exponent, rounded half away from zero (the language has
//     only float arithmetic: 1.005 * 100 is 100.49999999999999);
//   - $.exponent: the ISO 4217 exponent table;
//   - $.sha256: no hashing in the language;
//   - $.utc: no time functions (RFC 3339 with offset to UTC seconds);
//   - $.urlQuery: btn_ref from context.page.url's query string.
// Paths are compiled as simple paths (a.b.c becomes a?.b?.c), the fast
// option the engine's documentation recommends when the event's shape is
// known; with the default rich paths this program is about 1.3x slower.
// Routing (track, event name, advertising consent) happens before the
// template runs, as RudderStack's processor does; here it is routable()
// from common.mjs, the same for every peer.
//
// Usage: node rudderstack.mjs FILE [--dump N] [--seconds S]

import { JsonTemplateEngine, PathType } from '@rudderstack/json-template-engine';
import { exponent, minorUnits, routable, run, sha256Hex, urlQuery, utcSeconds } from './common.mjs';

export const template = `
let given = function(v) { v !== undefined && v !== null && v !== '' };
let first = function(a, b, c) { given(a) ? a : given(b) ? b : c };
let p = .properties;
let currency = given(p.currency) ? p.currency.toUpperCase() : undefined;
let exp = $.exponent(currency);
let userId = first(.user_id, .userId);
let email = first(.traits.email, .context.traits.email, p.email);
let item = function(it) {
  let quantity = given(it.quantity) ? Number(it.quantity) : 1;
  let amount = $.minor(it.price, exp);
  {
    identifier: first(it.product_id, it.sku),
    quantity: quantity,
    amount: amount,
    total: amount !== undefined ? amount * quantity : undefined,
    description: given(it.name) ? it.name : undefined,
    sku: given(it.sku) ? it.sku : undefined,
    category: given(it.category) ? [it.category] : undefined,
    attributes: given(it.brand) || given(it.variant) ? {
      brand: given(it.brand) ? it.brand : undefined,
      variant: given(it.variant) ? it.variant : undefined
    } : undefined
  }
};
{
  order_id: given(p.order_id) ? String(p.order_id) : undefined,
  total: $.minor(first(p.subtotal, p.revenue, p.total), exp),
  currency: currency,
  purchase_date: $.utc(.timestamp),
  btn_ref: given(p.btn_ref) ? p.btn_ref
    : given(.context.click_ids.btn_ref) ? .context.click_ids.btn_ref
    : $.urlQuery(.context.page.url, 'btn_ref'),
  customer: given(userId) ? {
    id: String(userId),
    email_sha256: given(email) ? $.sha256(email.trim().toLowerCase()) : undefined
  } : undefined,
  line_items: Array.isArray(p.products) ? p.products.map(item) : undefined
}
`;

const bindings = {
  exponent,
  minor: minorUnits,
  sha256: sha256Hex,
  utc: utcSeconds,
  urlQuery,
};

const engine = JsonTemplateEngine.create(template, { defaultPathType: PathType.SIMPLE });

// mapLine: bytes in (the NDJSON line) to bytes out (the body's JSON).
export async function mapLine(line) {
  const ev = JSON.parse(line);
  if (!routable(ev)) return null;
  return JSON.stringify(await engine.evaluate(ev, bindings));
}

await run('rudderstack', mapLine, { isAsync: true });
