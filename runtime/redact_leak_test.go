package runtime_test

// Issue #11, findings 4 and 5: a Basic credential echoed by a vendor at an
// offset the redactor did not know, and the start of a secret left before
// a cut mark past the eighth one.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// basicBlueprint sends Basic base64(application_id:api_key) and the
// property a unchanged; the vendor's error message is at error.message.
const basicBlueprint = `key: basic
version: 1.0.0
name: Basic
category: other
status: alpha
hosts: [api.example.com]
config:
  application_id: {type: string, required: true}
  api_key: {type: secret, required: true}
responses:
  message: error.message
  rules:
    - {status: 2xx, outcome: delivered}
    - {status: 4xx, outcome: failed}
requests:
  r:
    method: POST
    url: https://api.example.com/v1/e
    auth: {type: basic, username: "{config.application_id}", password: "{config.api_key}"}
    body:
      a: {from: properties.a}
events:
  E: {vendor_event: e, request: r}
`

func bindBasic(t testing.TB, appID, key string) *runtime.Integration {
	t.Helper()
	bp, ds := engine.Compile("basic.yaml", []byte(basicBlueprint))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"application_id": appID, "api_key": key})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// base64Cores are the base64 characters that depend on secret alone,
// wherever it sits in the encoded text: one run per alignment (0, 1, 2
// bytes into a 3-byte group) and alphabet.
func base64Cores(secret string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for a := 0; a < 3; a++ {
			e := enc.EncodeToString(append(make([]byte, a), secret...))
			from, to := (8*a+5)/6, (8*a+8*len(secret))/6
			if to > from {
				out = append(out, e[from:to])
			}
		}
	}
	return out
}

// The vendor echoes the Authorization header in a 400 answer: with an
// application_id of any length, the credential is at any offset of the
// base64 text, and none of it may reach the verdict.
func TestBasicCredentialEchoedAtAnyOffset(t *testing.T) {
	const key = "sk-test-123"
	for n := 1; n <= 12; n++ {
		appID := "app-abcdefghijk"[:n]
		if n == 7 {
			appID = "app-abc" // the example: Basic YXBwLWFiYzpzay10ZXN0LTEyMw==
		}
		in := bindBasic(t, appID, key)
		res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":"x"}}`))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
		}
		req := res.Requests[0]
		auth, _ := req.Header("Authorization")
		cred := strings.TrimPrefix(auth, "Basic ")
		forbidden := append([]string{cred, key}, base64Cores(key)...)
		check := func(where, text string) {
			t.Helper()
			for _, f := range forbidden {
				if strings.Contains(text, f) {
					t.Errorf("application_id %q: %s shows %q: %s", appID, where, f, text)
					return
				}
			}
		}
		echo := "bad credentials: Authorization: " + auth
		msg, _ := json.Marshal(echo)
		for name, body := range map[string]string{
			"vendor message": `{"error":{"message":` + string(msg) + `}}`,
			"raw body":       echo,
		} {
			v := in.Classify(req, 400, nil, []byte(body))
			if v.Outcome != runtime.Failed {
				t.Fatalf("%s: %+v", name, v)
			}
			check("the verdict ("+name+")", v.Message)
		}
		// The same credential in event data, sent on unchanged.
		ev := []byte(`{"type":"track","event":"E","properties":{"a":` + string(msg) + `}}`)
		if !in.CarriesSecret(ev) {
			t.Errorf("application_id %q: CarriesSecret misses the echoed credential", appID)
		}
		res = in.Evaluate(ev)
		check("Result.String()", res.String())
		j, _ := res.MarshalJSON()
		check("Result.MarshalJSON()", string(j))
		r := in.Redacted(res.Requests[0])
		check("Redacted(req)", fmt.Sprint(r.URL, r.Headers, string(r.Body)))
	}
}

// cutLeaks lists the starts of forms (4 characters or more) shown right
// before a cut mark.
func cutLeaks(text string, forms ...string) []string {
	var found []string
	for _, f := range forms {
		for l := 4; l < len(f); l++ {
			if strings.Contains(text, f[:l]+"...") {
				found = append(found, f[:l]+"...")
			}
		}
	}
	return found
}

// Eight values cut to 40 bytes, then one whose cut falls inside the key:
// the ninth cut mark keeps no start of the key, in any view.
func TestCutSecretAfterManyCutMarks(t *testing.T) {
	const key = robustAPIKey // sk-test-123
	in := robustBind(t, "retail", key)
	var products []string
	for i := 0; i < 8; i++ {
		products = append(products, `{"sku":"s`+fmt.Sprint(i)+`","price":"`+strings.Repeat("x", 50)+`"}`)
	}
	products = append(products, `{"sku":"s8","price":"`+strings.Repeat("x", 31)+key+`"}`)
	res := in.Evaluate(robustOrder(`"order_id":"o-1","total":1,"currency":"USD","products":[` + strings.Join(products, ",") + `]`))
	if res.Outcome != runtime.Reject || strings.Count(res.Message, "...") < 9 {
		t.Fatalf("want a reject naming nine cut prices, got %s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	j, _ := res.MarshalJSON()
	var logLine strings.Builder
	slog.New(slog.NewTextHandler(&logLine, nil)).Warn("rejected", "result", res, "details", res.Message)
	for where, text := range map[string]string{
		"Message": res.Message, "String()": res.String(), "MarshalJSON()": string(j), "log line": logLine.String(),
	} {
		if leaks := cutLeaks(text, key); len(leaks) > 0 {
			t.Errorf("%s shows %q:\n%s", where, leaks, text)
		}
	}
}

// A vendor message with eight "x..." before the echoed Authorization
// header, cut (200 characters) inside the credential.
func TestCutVendorEchoAfterManyCutMarks(t *testing.T) {
	const key = robustAPIKey
	in := robustBind(t, "retail", key)
	res := in.Evaluate(robustOrder(robustGoodOrder))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	req := res.Requests[0]
	auth, _ := req.Header("Authorization") // Basic c2stdGVzdC0xMjM6
	cred := strings.TrimPrefix(auth, "Basic ")
	head := strings.Repeat("x... ", 8) + "Authorization: "
	pad := strings.Repeat("y", 200-len(head)-len("Basic c2stdGVzdC0xMj"))
	echo := head[:40] + pad + head[40:] + auth + " and more"
	msg, _ := json.Marshal(echo)
	for name, body := range map[string]string{
		"vendor message": `{"error":{"message":` + string(msg) + `}}`,
		"raw body":       strings.Repeat("x... ", 8) + pad[:len(pad)-len("Bad Request: ")+13] + "Authorization: " + auth + " and more",
	} {
		v := in.Classify(req, 400, nil, []byte(body))
		if leaks := cutLeaks(v.Message, cred, key); len(leaks) > 0 || strings.Contains(v.Message, cred) {
			t.Errorf("%s: the verdict shows %q: %s", name, leaks, v.Message)
		}
	}
}

// A vendor that echoes the secret percent-encoded by another encoder than
// Go's (.NET's HttpUtility.UrlEncode writes lower-case hex, Python's
// quote leaves '/' as it is, others leave '=' or '+'): the redactor knew
// only url.QueryEscape and url.PathEscape, so "abc%2bdef%2fghi%3djk" and
// "abc%2Bdef/ghi%3Djk" of the key "abc+def/ghi=jk" (a base64-like key)
// reached the verdict, the log and the dead letter. An event carrying the
// key so was not refused either. Percent-escapes in any mix and case are
// undone before matching now.
func TestPercentEncodedSecretInAnyMix(t *testing.T) {
	const key = "abc+def/ghi=jk"
	in := bindBasic(t, "app-abc", key)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":1}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	req := res.Requests[0]
	for _, echo := range []string{
		"abc%2bdef%2fghi%3djk",                           // lower-case hex
		"abc%2Bdef/ghi%3Djk",                             // '/' kept (Python's quote)
		"abc+def%2Fghi%3djk",                             // mixed
		"%61%62%63%2B%64%65%66%2F%67%68%69%3D%6A%6B",     // every byte
		"app-abc%3aabc%2bdef%2fghi%3djk",                 // the Basic user:password
		strings.Repeat("x... ", 9) + "abc%2bdef%2fgh...", // cut short
	} {
		body := `{"error":{"message":"key ` + echo + ` refused"}}`
		v := in.Classify(req, 400, nil, []byte(body))
		if strings.Contains(v.Message, "abc%2") || strings.Contains(v.Message, "def%2") || strings.Contains(v.Message, "%61%62") ||
			strings.Contains(v.Message, "ghi%3") || strings.Contains(v.Message, "%2bdef") {
			t.Errorf("echo %q: the verdict shows %q", echo, v.Message)
		}
		if !strings.Contains(v.Message, "refused") && !strings.Contains(echo, "...") {
			t.Errorf("echo %q: the verdict lost the text around it: %q", echo, v.Message)
		}
		ev := []byte(`{"type":"track","event":"E","properties":{"a":"` + echo + `"}}`)
		if !in.CarriesSecret(ev) && !strings.Contains(echo, "...") {
			t.Errorf("an event holding %q does not carry the secret", echo)
		}
	}
	// Percent-escapes that hide no secret are left as they are.
	v := in.Classify(req, 400, nil, []byte(`{"error":{"message":"bad value 100%25 in a%2Fb"}}`))
	if !strings.Contains(v.Message, "100%25 in a%2Fb") {
		t.Errorf("text without a secret changed: %q", v.Message)
	}
}
