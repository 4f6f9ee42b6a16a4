package runtime_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
)

// hostileHead is the catalog header of every blueprint written here.
const hostileHead = "key: hostile\nversion: 0.1.0\nname: Hostile\ndescription: test\ncategory: other\nstatus: alpha\n"

// advSigBlueprint signs its body into X-Signature, and also declares a
// plain header of that name (in another case): the signature replaces it.
const advSigBlueprint = hostileHead + `config:
  key: {type: secret, label: Key, required: true}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    headers:
      x-signature: "plain"
      X-Sent-At: "0"
    auth:
      type: signature
      secret: "{config.key}"
      header: X-Signature
      timestamp_header: X-Sent-At
      prefix: "sha256="
    body:
      a: {from: properties.a, type: string}
events:
  E:
    request: r
    vendor_event: e
`

// A plain header named like the signature header (in any case) must not
// carry the signature out in a printed view or a vendor message: the
// signature replaces it, and is secret.
func TestAdvSignatureReplacingPlainHeaderIsSecret(t *testing.T) {
	in, err := runtime.Bind(compileInline(t, advSigBlueprint), "", map[string]any{"key": "supersecretkey"})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":"x"}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s", res)
	}
	req := res.Requests[0]
	sig, _ := req.Header("X-Signature")
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatalf("signature %q", sig)
	}
	n := 0
	for _, h := range req.Headers {
		if strings.EqualFold(h.Name, "X-Signature") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d X-Signature headers sent, want 1: %v", n, req.Headers)
	}
	hex := sig[7:]
	for name, view := range map[string]string{"String": res.String(), "AppendJSON": string(res.AppendJSON(nil))} {
		if strings.Contains(view, hex) {
			t.Errorf("%s shows the signature:\n%s", name, view)
		}
	}
	echo := []byte(`{"error":"bad signature ` + sig + `", "expected":"` + strings.ToUpper(hex) + `"}`)
	if v := in.Classify(req, http.StatusBadRequest, nil, echo); strings.Contains(strings.ToLower(v.Message), hex) {
		t.Errorf("vendor message shows the signature: %s", v.Message)
	}
}

// A vendor echoing a form body or query string writes spaces as '+' and
// may leave characters escaped or not as its encoder chooses
// (URLSearchParams keeps '*', others '/', ':' or '@'): every such spelling
// of a secret is scrubbed, in messages and in Redact.
func TestAdvPlusEncodedSecretIsScrubbed(t *testing.T) {
	const secret = "my secret*key/1:@!"
	in, err := runtime.Bind(compileInline(t, advSigBlueprint), "", map[string]any{"key": secret})
	if err != nil {
		t.Fatal(err)
	}
	for _, echo := range []string{
		"my+secret*key%2F1%3A%40%21",   // URLSearchParams
		"my+secret*key/1:@!",           // nothing but the space escaped
		"my+secret%2Akey/1%3a@%21",     // any mix
		"a=1&k=my+secret*key/1:@!&b=2", // inside a form body
	} {
		if got := in.Redact("vendor said: " + echo); strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q", echo, got)
		}
		if !in.CarriesSecret([]byte(`{"properties":{"a":"` + echo + `"}}`)) {
			t.Errorf("CarriesSecret misses %q", echo)
		}
		req := &runtime.Request{Method: "POST", URL: "https://api.example.com/x"}
		if v := in.Classify(req, http.StatusBadRequest, nil, []byte(echo)); strings.Contains(v.Message, "secret") {
			t.Errorf("vendor message %q", v.Message)
		}
	}
	// A '+' that is the secret's own is no space.
	in2, err := runtime.Bind(compileInline(t, advSigBlueprint), "", map[string]any{"key": "a+secret+b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, echo := range []string{"a+secret+b", "a%2Bsecret%2Bb", "a%2bsecret+b"} {
		if got := in2.Redact("x " + echo + " y"); got != "x *** y" {
			t.Errorf("Redact(%q) = %q", echo, got)
		}
	}
}

// A vendor event computed from event data (a catch-all mapping) is event
// data: quoted in the text view when a terminal would act on it, and
// scrubbed of secrets wherever it goes (JSON view, logs, stored items).
func TestAdvComputedVendorEventIsShownSafely(t *testing.T) {
	const src = hostileHead + `config:
  key: {type: secret, label: Key, required: true}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    headers:
      X-Key: {value: "{config.key}", secret: true}
    body:
      n: {from: properties.n, type: string}
events:
  "*":
    request: r
    vendor_event: {expr: 'event.properties.a + event.properties.b'}
`
	in, err := runtime.Bind(compileInline(t, src), "", map[string]any{"key": "supersecretkey"})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"x","properties":{"a":"\u001b[2J\nforged supersec","b":"retkey"}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s", res)
	}
	if strings.Contains(res.String(), "\x1b") || strings.Contains(res.String(), "\nforged") {
		t.Errorf("String acts on a terminal:\n%s", res.String())
	}
	for name, view := range map[string]string{"VendorEvent": res.VendorEvent, "String": res.String(), "AppendJSON": string(res.AppendJSON(nil))} {
		if strings.Contains(view, "supersecretkey") {
			t.Errorf("%s shows the secret: %s", name, view)
		}
	}
}

// A secret field (or header) computed from a secret in a way the
// redaction cannot know (upper, regex_replace) that breaks its type or
// pattern must not be quoted in the reject's message.
func TestAdvInvalidSecretFieldIsNotQuoted(t *testing.T) {
	const src = hostileHead + `config:
  key: {type: secret, label: Key, required: true}
hosts: [api.example.com]
values:
  sk: {expr: 'upper(config.key)', type: string, pattern: "^[a-z]+$"}
  hk: {expr: 'regex_replace(config.key, "s", "Z") + event.properties.h', type: string}
requests:
  r:
    method: POST
    url: https://api.example.com/x
    encoding: form
    headers:
      X-K: {value: "{values.hk}", secret: true}
    body:
      f: {value: sk, secret: true}
      n: {expr: 'regex_replace(config.key, "s", "Z")', secret: true, type: integer}
      Item:
        from: properties.items
        type: array
        flatten: indexed
        items:
          S: {expr: 'upper(config.key) + item.a', secret: true, type: string, pattern: "^x$"}
events:
  E: {request: r, vendor_event: e}
`
	in, err := runtime.Bind(compileInline(t, src), "", map[string]any{"key": "supersecretkey"})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"h":"\n","items":[{"a":"1"}]}}`))
	if res.Outcome != runtime.Reject || len(res.Fields) != 4 {
		t.Fatalf("%s", res)
	}
	for name, view := range map[string]string{"Message": res.Message, "String": res.String(), "AppendJSON": string(res.AppendJSON(nil))} {
		if low := strings.ToLower(view); strings.Contains(low, "supersecretkey") || strings.Contains(low, "zuperzecretkey") {
			t.Errorf("%s shows a value computed from the secret: %s", name, view)
		}
	}
}

// A vendor echoing the bearer token it was sent (a fetched OAuth token, a
// secret header read from the event) in any encoding: the token is
// scrubbed, not only "Bearer TOKEN" as a unit.
func TestAdvEchoedTokenEncodingsAreScrubbed(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      a: {from: properties.a, type: string}
events:
  E: {request: r, vendor_event: e}
`)
	const tok = "tok+live/777=="
	req := &runtime.Request{Method: "POST", URL: "https://api.example.com/x",
		Headers: []runtime.Header{{Name: "Authorization", Value: "Bearer " + tok, Secret: true}}}
	for _, echo := range []string{
		`{"error":"invalid token ` + tok + `"}`,
		`token=tok%2Blive%2F777%3D%3D rejected`,
		`{"error":"token tok\u002blive\/777== expired"}`,
	} {
		if v := in.Classify(req, http.StatusBadRequest, nil, []byte(echo)); strings.Contains(v.Message, "777") {
			t.Errorf("vendor message shows the token: %q", v.Message)
		}
	}
}

// An expression whose list or map result JSON cannot hold (an event
// number past float64 inside it) makes its field invalid: before, the
// field was absent, and an order went out without its items (Impact's
// Item reads fields.Items).
func TestAdvExprListOutOfRangeIsInvalid(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      items: {expr: 'event.properties.products', required: true}
      opt: {expr: 'event.properties.products'}
events:
  E: {request: r, vendor_event: e}
`)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"products":[{"price":1e999999999}]}}`))
	if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || strings.Join(res.Fields, ",") != "items,opt" {
		t.Fatalf("%s", res)
	}
}

// The secret fields of joined requests stay masked in the joined
// request's views: inside the joined array and around it.
func TestAdvJoinedBatchMasksDerivedSecrets(t *testing.T) {
	const src = hostileHead + `config:
  key: {type: secret, label: Key, required: true}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    batch: {into: orders}
    body:
      pre: {expr: 'upper(config.key) + "PRE"', secret: true}
      orders:
        expr: '[event.properties]'
        type: array
        items:
          id: {from: id, type: string}
          k: {expr: 'upper(config.key) + item.id', secret: true}
      post: {expr: 'upper(config.key) + "POST"', secret: true}
events:
  E: {request: r, vendor_event: e}
`
	in, err := runtime.Bind(compileInline(t, src), "", map[string]any{"key": "supersecretkey"})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*runtime.Request
	for _, id := range []string{"a", "bb", "ccc"} {
		res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"id":"` + id + `"}}`))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s", res)
		}
		if strings.Contains(strings.ToLower(res.String()), "supersecretkey") {
			t.Fatalf("single view leaks:\n%s", res)
		}
		reqs = append(reqs, res.Requests[0])
	}
	joined, err := in.JoinBatch(reqs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(joined.Body), "SUPERSECRETKEYccc") {
		t.Fatalf("joined body %s", joined.Body)
	}
	view := string(in.Redacted(joined).Body)
	if strings.Contains(strings.ToLower(view), "supersecretkey") {
		t.Errorf("joined view leaks: %s", view)
	}
}

// An indexed list item holding an object under a key from the event: the
// reject names the list and quotes the key cut short, so the event cannot
// write terminal escapes, forged lines or a 100 KB message.
func TestAdvIndexedItemKeyFaultIsQuoted(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    encoding: form
    body:
      Item: {from: properties.items, type: array, flatten: indexed}
events:
  E: {request: r, vendor_event: e}
`)
	key := "\x1b[2J\nforged " + strings.Repeat("K", 100000)
	ev, _ := json.Marshal(map[string]any{"type": "track", "event": "E", "properties": map[string]any{"items": []any{map[string]any{key: map[string]any{"x": 1}}}}})
	res := in.Evaluate(ev)
	if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "Item" {
		t.Fatalf("%s", res.Outcome)
	}
	if len(res.Message) > 200 || strings.ContainsAny(res.Message, "\x1b\n") {
		t.Errorf("message %q", res.Message[:min(len(res.Message), 300)])
	}
}

// Expression errors quote their inputs (int(x), a pattern from the
// event): the message escapes what a terminal would act on and is cut.
func TestAdvExprErrorQuotingEventIsSafe(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      i: {expr: 'int(event.properties.t)'}
      r: {expr: 'regex_replace("abc", event.properties.t, "x")'}
events:
  E: {request: r, vendor_event: e}
`)
	ev, _ := json.Marshal(map[string]any{"type": "track", "event": "E", "properties": map[string]any{"t": "\x1b[2J\r\u2028forged(" + strings.Repeat("K", 5000)}})
	res := in.Evaluate(ev)
	if res.Outcome != runtime.Reject || len(res.Fields) != 2 {
		t.Fatalf("%s", res)
	}
	if len(res.Message) > 600 || strings.ContainsAny(res.Message, "\x1b\r\u2028") {
		t.Errorf("message (%d bytes) %q", len(res.Message), res.Message[:min(len(res.Message), 300)])
	}
}

// A computed vendor event is a name: one from a 100 KB event property is
// invalid where it is written, and never stored or logged with each
// queued request and attempt.
func TestAdvComputedVendorEventIsBounded(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      name: {value: vendor_event, required: true}
events:
  "*":
    request: r
    vendor_event: {from: event}
`)
	res := in.Evaluate([]byte(`{"type":"track","event":"` + strings.Repeat("e", 100000) + `"}`))
	if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "name" || len(res.VendorEvent) > 255 {
		t.Fatalf("%s %v vendor event of %d bytes", res.Outcome, res.Fields, len(res.VendorEvent))
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"` + strings.Repeat("e", 255) + `"}`))
	if res.Outcome != runtime.Deliver || len(res.VendorEvent) != 255 {
		t.Fatalf("%s %s", res.Outcome, res.Message)
	}
}

// int() of an event number outside int's range is an error: Go's
// conversion gave math.MinInt on amd64, written as the event's value.
func TestAdvIntOfOutOfRangeNumberIsInvalid(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      q: {expr: 'int(event.properties.q)'}
events:
  E: {request: r, vendor_event: e}
`)
	for _, q := range []string{"1e300", "-1e300", "9.3e18", "-9.3e18"} {
		res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"q":` + q + `}}`))
		if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "q" {
			t.Errorf("q=%s: %s", q, res)
		}
	}
	for q, want := range map[string]string{"2.9": `{"q":2}`, "-9.2e18": `{"q":-9200000000000000000}`, `"42"`: `{"q":42}`} {
		res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"q":` + q + `}}`))
		if res.Outcome != runtime.Deliver || string(res.Requests[0].Body) != want {
			t.Errorf("q=%s: %s", q, res)
		}
	}
}

// -x and abs(x) of the event integer -9223372036854775808 overflowed back
// to it (expr-lang does not check unary minus): abs gave a negative.
func TestAdvNegationOfMinIntIsNotNegative(t *testing.T) {
	in := bindInline(t, hostileHead+`hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/x
    body:
      a: {expr: 'abs(event.properties.q)'}
      n: {expr: '-event.properties.q'}
      p: {expr: 'event.properties.q + 1'}
events:
  E: {request: r, vendor_event: e}
`)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"q":-9223372036854775808}}`))
	if res.Outcome == runtime.Deliver && strings.Contains(string(res.Requests[0].Body), `"a":-`) || strings.Contains(res.String(), `"n": -`) {
		t.Fatalf("%s", res)
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"q":-9223372036854775807}}`))
	if res.Outcome != runtime.Deliver || string(res.Requests[0].Body) != `{"a":9223372036854775807,"n":9223372036854775807,"p":-9223372036854775806}` {
		t.Fatalf("%s", res)
	}
}
