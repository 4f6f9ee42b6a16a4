package blueprintdiff_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/blueprintdiff"
	"github.com/blueprint-engine/blueprint/internal/compiler"
)

func compile(t *testing.T, name, src string) *compiler.Blueprint {
	t.Helper()
	bp, ds := engine.Compile(name, []byte(src))
	if bp == nil {
		t.Fatalf("%s does not compile:\n%s\n%s", name, ds.Error(), src)
	}
	return compiler.Of(bp)
}

// base is the old version of every case below.
const base = `key: acme
version: 1.2.3
name: Acme
description: Orders to Acme.
category: other
status: alpha
config:
  account_id: {type: string, label: Account ID, required: true, pattern: "^[a-z0-9-]+$"}
  api_key: {type: secret, label: API Key, required: true}
  region:
    type: select
    default: us
    options: [{value: us, label: US}, {value: eu, label: EU}]
  retries: {type: integer, min: 1, max: 10}
  note: {type: string}
hosts: [api.example.com]
consent:
  category: advertising
  from: [context.consent.advertising, context.consent.categories.advertising]
values:
  currency: {from: properties.currency, type: currency}
  time: {from: timestamp, type: time}
requests:
  order:
    method: POST
    url: https://api.example.com/v1/{config.account_id}/orders
    auth: {type: bearer, token: "{config.api_key}"}
    body:
      order_id: {from: properties.order_id, type: id, required: true}
      total: {from: [properties.revenue, properties.total], type: decimal, currency: currency, required: true}
      currency: {value: currency}
      time: {value: time, required: true}
      coupon: {from: properties.coupon, type: string}
      customer:
        type: object
        fields:
          id: {from: user_id, type: string}
          email: {from: traits.email, type: email_sha256}
      items:
        from: properties.products
        type: array
        items:
          sku: {from: [sku, product_id], type: string, required: true}
          quantity: {from: quantity, type: integer, min: 1, default: 1}
events:
  Order Completed: {vendor_event: purchase, request: order, description: An order.}
variants:
  default: {name: Default}
  retail:
    name: Retail
    events:
      Order Refunded: {vendor_event: refund, request: order}
`

func TestCompare(t *testing.T) {
	cases := []struct {
		name  string
		edits []string // old, new, old, new...
		want  []string // every line expected, in order
		needs blueprintdiff.Level
	}{
		{"nothing", nil, nil, blueprintdiff.None},
		{"description only", []string{"description: Orders to Acme.", "description: Completed orders to Acme."},
			[]string{"patch: description changed"}, blueprintdiff.Patch},
		{"labels and help text", []string{"label: Account ID,", "label: Account, help_text: From settings.,"},
			[]string{"patch: config key account_id: label changed", "patch: config key account_id: help_text changed"}, blueprintdiff.Patch},
		{"config key removed", []string{"  note: {type: string}\n", ""},
			[]string{"major: config key note removed"}, blueprintdiff.Major},
		{"optional config added", []string{"  note: {type: string}\n", "  note: {type: string}\n  extra: {type: boolean}\n"},
			[]string{"minor: config key extra added (optional)"}, blueprintdiff.Minor},
		{"required config added", []string{"  note: {type: string}\n", "  note: {type: string}\n  extra: {type: string, required: true}\n"},
			[]string{"major: config key extra added, required without default"}, blueprintdiff.Major},
		{"required config with default added", []string{"  note: {type: string}\n", "  note: {type: string}\n  extra: {type: string, required: true, default: x}\n"},
			[]string{"minor: config key extra added (optional)"}, blueprintdiff.Minor},
		{"conditionally required config added", []string{"  note: {type: string}\n", "  note: {type: string}\n  extra: {type: string, required_when: 'config.region == \"eu\"'}\n"},
			[]string{`major: config key extra added, required when config.region == "eu"`}, blueprintdiff.Major},
		{"config made required", []string{"note: {type: string}", "note: {type: string, required: true}"},
			[]string{"major: config key note made required"}, blueprintdiff.Major},
		{"config no longer required", []string{"api_key: {type: secret, label: API Key, required: true}", "api_key: {type: secret, label: API Key}"},
			[]string{"minor: config key api_key no longer required"}, blueprintdiff.Minor},
		{"config type changed", []string{"retries: {type: integer,", "retries: {type: number,"},
			[]string{"major: config key retries: type changed from integer to number"}, blueprintdiff.Major},
		{"select option removed", []string{", {value: eu, label: EU}]", "]"},
			[]string{"major: config key region: option eu removed"}, blueprintdiff.Major},
		{"select option added", []string{", {value: eu, label: EU}]", ", {value: eu, label: EU}, {value: apac, label: APAC}]"},
			[]string{"minor: config key region: option apac added"}, blueprintdiff.Minor},
		{"select default changed", []string{"default: us", "default: eu"},
			[]string{"minor: config key region: default changed from us to eu"}, blueprintdiff.Minor},
		{"config pattern added", []string{"note: {type: string}", "note: {type: string, pattern: '^[a-z]+$'}"},
			[]string{"major: config key note: pattern ^[a-z]+$ added"}, blueprintdiff.Major},
		{"config pattern changed", []string{`pattern: "^[a-z0-9-]+$"`, `pattern: "^[a-z0-9]+$"`},
			[]string{"major: config key account_id: pattern changed from ^[a-z0-9-]+$ to ^[a-z0-9]+$"}, blueprintdiff.Major},
		{"config pattern removed", []string{`, pattern: "^[a-z0-9-]+$"`, ""},
			[]string{"minor: config key account_id: pattern ^[a-z0-9-]+$ removed"}, blueprintdiff.Minor},
		{"config bounds narrowed", []string{"min: 1, max: 10", "min: 2, max: 5"},
			[]string{"major: config key retries: minimum raised to 2", "major: config key retries: maximum lowered to 5"}, blueprintdiff.Major},
		{"config bounds widened", []string{"min: 1, max: 10", "min: 0"},
			[]string{"minor: config key retries: minimum lowered to 0", "minor: config key retries: maximum raised (removed)"}, blueprintdiff.Minor},
		{"host added", []string{"hosts: [api.example.com]", "hosts: [api.example.com, eu.example.com]"},
			[]string{"minor: host eu.example.com added"}, blueprintdiff.Minor},
		{"host changed", []string{"hosts: [api.example.com]", "hosts: [api.example.com, v2.example.com]", "https://api.example.com/v1/", "https://v2.example.com/v1/"},
			[]string{"minor: host v2.example.com added",
				"minor: request order: URL changed from https://api.example.com/v1/{config.account_id}/orders to https://v2.example.com/v1/{config.account_id}/orders (Order Completed in default, retail; Order Refunded in retail)"},
			blueprintdiff.Minor},
		{"body field removed", []string{"      coupon: {from: properties.coupon, type: string}\n", ""},
			[]string{"major: request order: body field coupon removed (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"body field renamed", []string{"      coupon: {from:", "      discount_code: {from:"},
			[]string{"major: request order: body field coupon renamed to discount_code (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"nested field removed", []string{"          email: {from: traits.email, type: email_sha256}\n", ""},
			[]string{"major: request order: body field customer.email removed (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"item field type changed", []string{"quantity: {from: quantity, type: integer,", "quantity: {from: quantity, type: number,"},
			[]string{"major: request order: body field items[].quantity: type changed from integer to number (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"field written as text", []string{"total: {from: [properties.revenue, properties.total], type: decimal,", "total: {from: [properties.revenue, properties.total], type: decimal, text: true,"},
			[]string{"major: request order: body field total: type changed from decimal (with a currency) to decimal (with a currency, as text) (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"field no longer reads a path", []string{"from: [properties.revenue, properties.total]", "from: properties.revenue"},
			[]string{"major: request order: body field total no longer reads properties.total (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"field reads one more path", []string{"from: [sku, product_id]", "from: [sku, product_id, id]"},
			[]string{"minor: request order: body field items[].sku also reads id (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Minor},
		{"field made required", []string{"coupon: {from: properties.coupon, type: string}", "coupon: {from: properties.coupon, type: string, required: true}"},
			[]string{"major: request order: body field coupon made required (events without it are rejected) (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"optional field added", []string{"      coupon: {from: properties.coupon, type: string}\n", "      coupon: {from: properties.coupon, type: string}\n      tax: {from: properties.tax, type: decimal}\n"},
			[]string{"minor: request order: body field tax added (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Minor},
		{"required field added", []string{"      coupon: {from: properties.coupon, type: string}\n", "      coupon: {from: properties.coupon, type: string}\n      tax: {from: properties.tax, type: decimal, required: true}\n"},
			[]string{"major: request order: body field tax added, required (events without it are rejected) (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"computed differently", []string{"currency: {value: currency}", "currency: {expr: 'upper(event.properties.currency)'}"},
			[]string{"patch: request order: body field currency computed differently (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Patch},
		{"shared value reads another path", []string{"currency: {from: properties.currency, type: currency}", "currency: {from: properties.currency_code, type: currency}"},
			[]string{"major: value currency no longer reads properties.currency", "minor: value currency also reads properties.currency_code"}, blueprintdiff.Major},
		{"event mapping added", []string{"      Order Refunded: {vendor_event: refund, request: order}\n", "      Order Refunded: {vendor_event: refund, request: order}\n      Order Cancelled: {vendor_event: cancel, request: order}\n"},
			[]string{"minor: event mapping Order Cancelled added (in retail)"}, blueprintdiff.Minor},
		{"event mapping dropped", []string{"    events:\n      Order Refunded: {vendor_event: refund, request: order}\n", ""},
			[]string{"major: event mapping Order Refunded removed (in retail)"}, blueprintdiff.Major},
		{"vendor event changed", []string{"vendor_event: purchase", "vendor_event: order"},
			[]string{"major: event mapping Order Completed: vendor event changed from purchase to order (in default, retail)"}, blueprintdiff.Major},
		{"filter added", []string{"request: order, description: An order.}", "request: order, description: An order., filter: 'event.properties.test != true'}"},
			[]string{"major: event mapping Order Completed: filter added (events it refuses are skipped) (in default, retail)"}, blueprintdiff.Major},
		{"variant removed", []string{"  retail:\n    name: Retail\n    events:\n      Order Refunded: {vendor_event: refund, request: order}\n", ""},
			[]string{"major: variant retail removed"}, blueprintdiff.Major},
		{"variant added", []string{"  default: {name: Default}\n", "  default: {name: Default}\n  lean: {name: Lean}\n"},
			[]string{"minor: variant lean added"}, blueprintdiff.Minor},
		{"variant requires config", []string{"  default: {name: Default}\n", "  default: {name: Default, required_config: [note]}\n"},
			[]string{"major: variant default now requires config key note"}, blueprintdiff.Major},
		{"consent category changed", []string{"category: advertising\n", "category: analytics\n"},
			[]string{"major: consent category changed from advertising to analytics"}, blueprintdiff.Major},
		{"consent path added", []string{"from: [context.consent.advertising,", "from: [context.consent.advertising, context.consent.canonical.marketing,"},
			[]string{"minor: consent also read from context.consent.canonical.marketing"}, blueprintdiff.Minor},
		{"consent allowed when missing", []string{"  from: [context.consent.advertising", "  when_missing: allow\n  from: [context.consent.advertising"},
			[]string{"minor: consent: events without a decision are now sent (when_missing: allow)"}, blueprintdiff.Minor},
		{"encoding changed", []string{"    method: POST\n", "    method: POST\n    encoding: form\n"},
			[]string{"major: request order: body encoding changed from json to form (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"URL needs a value", []string{"/orders\n", "/orders/{values.currency}\n"},
			[]string{"major: request order: URL now needs value currency (events without it are rejected) (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Major},
		{"auth changed", []string{"auth: {type: bearer, token: \"{config.api_key}\"}", "auth: {type: header, name: X-Key, value: \"{config.api_key}\"}"},
			[]string{"minor: request order: auth changed (Order Completed in default, retail; Order Refunded in retail)"}, blueprintdiff.Minor},
	}
	old := compile(t, "old.yaml", base)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := base
			for i := 0; i+1 < len(c.edits); i += 2 {
				if !strings.Contains(src, c.edits[i]) {
					t.Fatalf("the base has no %q", c.edits[i])
				}
				src = strings.Replace(src, c.edits[i], c.edits[i+1], 1)
			}
			r := blueprintdiff.Compare(old, compile(t, "new.yaml", src))
			var got []string
			for _, ch := range r.Changes {
				got = append(got, ch.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			if r.Needs != c.needs {
				t.Errorf("needs %s, want %s", r.Needs, c.needs)
			}
		})
	}
}

func TestBump(t *testing.T) {
	for _, c := range []struct {
		old, new string
		want     blueprintdiff.Level
		verdict  string
	}{
		{"1.2.3", "2.0.0", blueprintdiff.Major, "a MAJOR bump"},
		{"1.2.3", "1.3.0", blueprintdiff.Minor, "a MINOR bump"},
		{"1.2.3", "1.2.4", blueprintdiff.Patch, "a PATCH bump"},
		{"1.2.3", "1.2.3", blueprintdiff.None, "not a bump"},
		{"1.2.3", "1.2.2", blueprintdiff.None, "not a bump"},
		{"1.2.3", "1.10.0", blueprintdiff.Minor, "a MINOR bump"},
		{"0.1.0", "0.2.0", blueprintdiff.Minor, "a MINOR bump"},
		{"0.1.0", "1.0.0-rc.1", blueprintdiff.Major, "a MAJOR bump"},
		{"1.0.0-rc.1", "1.0.0", blueprintdiff.None, "not a bump"},
	} {
		if got := blueprintdiff.Bump(c.old, c.new); got != c.want {
			t.Errorf("Bump(%s, %s) = %s, want %s", c.old, c.new, got, c.want)
		}
		r := blueprintdiff.Report{Old: blueprintdiff.Side{Version: c.old}, New: blueprintdiff.Side{Version: c.new}, Bump: c.want}
		if v := r.Verdict(); !strings.HasSuffix(v, c.old+" -> "+c.new+" is "+c.verdict) {
			t.Errorf("verdict %q", v)
		}
	}
	for _, c := range []struct{ a, b string }{{"1.0.0-alpha", "1.0.0-alpha.1"}, {"1.0.0-alpha.1", "1.0.0-beta"}, {"1.0.0-beta.2", "1.0.0-beta.11"}, {"1.0.0-rc.1", "1.0.0"}, {"0.9.9", "0.10.0"}} {
		if blueprintdiff.CompareVersions(c.a, c.b) != -1 || blueprintdiff.CompareVersions(c.b, c.a) != 1 {
			t.Errorf("%s should sort before %s", c.a, c.b)
		}
	}
	for _, c := range []struct {
		v    string
		l    blueprintdiff.Level
		want string
	}{{"0.1.0", blueprintdiff.Major, "1.0.0"}, {"1.2.3", blueprintdiff.Minor, "1.3.0"}, {"1.2.3", blueprintdiff.Patch, "1.2.4"}, {"1.2.3", blueprintdiff.None, ""}} {
		if got := blueprintdiff.NextVersion(c.v, c.l); got != c.want {
			t.Errorf("NextVersion(%s, %s) = %q, want %q", c.v, c.l, got, c.want)
		}
	}
}

// The same blueprint: nothing to report, whatever its features (Button's
// consent paths, items, overlays' variants; the webhook's url config,
// auth alternatives, batch and body_from).
func TestCatalogAgainstItself(t *testing.T) {
	for _, f := range []string{"../../blueprints/button/0.1.0.yaml", "../../blueprints/webhook/0.1.0.yaml"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := blueprintdiff.Compare(compile(t, "a.yaml", string(src)), compile(t, "b.yaml", string(src)))
		for _, c := range r.Changes {
			t.Errorf("%s: unexpected change: %s", f, c)
		}
		if r.Needs != blueprintdiff.None || !r.OK || !strings.HasPrefix(r.Verdict(), "needs: none; ") {
			t.Errorf("%s: verdict %q ok %v", f, r.Verdict(), r.OK)
		}
	}
}

func TestBumpWarning(t *testing.T) {
	old := compile(t, "acme/1.2.3.yaml", base)
	patch := compile(t, "acme/1.2.4.yaml", strings.Replace(strings.Replace(base, "version: 1.2.3", "version: 1.2.4", 1), "  note: {type: string}\n", "", 1))
	pos := diag.Pos{File: "acme/1.2.4.yaml", Line: 2, Col: 10}
	ds := blueprintdiff.BumpWarning(pos, old, patch, "see: blueprint diff acme@1.2.3 acme@1.2.4")
	want := "acme/1.2.4.yaml:2:10: warning version_bump_too_small: version 1.2.4 is a patch bump from 1.2.3, but its changes need a major bump (2.0.0 or later): config key note removed; see: blueprint diff acme@1.2.3 acme@1.2.4"
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("got %v\nwant %s", ds, want)
	}
	major := compile(t, "acme/2.0.0.yaml", strings.Replace(strings.Replace(base, "version: 1.2.3", "version: 2.0.0", 1), "  note: {type: string}\n", "", 1))
	if ds := blueprintdiff.BumpWarning(pos, old, major, ""); len(ds) != 0 {
		t.Errorf("a major bump warns: %v", ds)
	}
}
