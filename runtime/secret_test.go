package runtime_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// The secret api_key of these tests and the forms it must never be shown in.
const secretKey = "sk-live-abc"

var secretForms = []string{
	secretKey,
	base64.StdEncoding.EncodeToString([]byte(secretKey)),       // c2stbGl2ZS1hYmM=
	base64.RawStdEncoding.EncodeToString([]byte(secretKey)),    // c2stbGl2ZS1hYmM
	base64.StdEncoding.EncodeToString([]byte(secretKey + ":")), // c2stbGl2ZS1hYmM6
}

// secretLeaks lists the secret forms found in s.
func secretLeaks(s string) []string {
	var found []string
	for _, f := range secretForms {
		if strings.Contains(s, f) {
			found = append(found, f)
		}
	}
	return found
}

// secretOverlay is an author's overlay that adds a custom event to Button:
// its activity request sends the source properties unchanged.
const secretOverlay = `extends: button@0.1.0
events:
  Secret Shared:
    description: A custom event whose properties are sent unchanged.
    vendor_event: secret_shared
    request: activity
`

func secretBlueprint(t *testing.T) *engine.Blueprint {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds := engine.Compile("secret_overlay.yaml", []byte(secretOverlay), engine.WithCatalog(cat))
	if bp == nil {
		t.Fatalf("the overlay does not compile:\n%v", ds)
	}
	return bp
}

// TestSecretNeverShown evaluates many events, some carrying the api_key
// value (and its base64 forms) in their own data, and checks that no
// printable view of the result shows the secret: Result.String(),
// Result.Message and the Redacted view of every request. The real request
// still carries the working Authorization header.
func TestSecretNeverShown(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(secretKey))
	b64colon := base64.StdEncoding.EncodeToString([]byte(secretKey + ":"))
	raw64 := base64.RawStdEncoding.EncodeToString([]byte(secretKey))
	url64 := base64.URLEncoding.EncodeToString([]byte(secretKey + ":"))
	const env = `"type":"track","timestamp":"2026-11-24T10:15:30Z","user_id":"cust-1","context":{"consent":{"advertising":true},"ip":"203.0.113.9","click_ids":{"btn_ref":"srctok-1"}}`
	order := func(props string) string {
		return `{"event":"Order Completed",` + env + `,"properties":{` + props + `}}`
	}
	events := []struct {
		name    string
		event   string
		outcome runtime.Outcome
		reason  string
	}{
		{"purchase", order(`"order_id":"ord-1","total":25.5,"currency":"USD","products":[{"product_id":"p-1","price":25.5}]`), runtime.Deliver, ""},
		{"add_to_cart", `{"event":"Product Added",` + env + `,"properties":{"product_id":"p-1","price":1}}`, runtime.Deliver, ""},
		{"custom event with the secret in its properties", `{"event":"Secret Shared",` + env + `,"properties":{` +
			`"token":"` + secretKey + `","b64":"` + b64 + `","b64colon":"` + b64colon + `","raw64":"` + raw64 + `","url64":"` + url64 + `",` +
			`"header":"Basic ` + b64colon + `","sentence":"my key is ` + secretKey + `, do not share","` + secretKey + `":true,` +
			`"nested":{"list":["` + secretKey + `",{"k":"` + b64 + `"}]}}}`, runtime.Deliver, ""},
		{"custom event with a JSON-escaped secret", `{"event":"Secret Shared",` + env + `,"properties":{"a":"sk\u002dlive-abc","b":"\u0073k-live-abc","c":"c2stbGl2ZS1hYmM\u003d"}}`, runtime.Deliver, ""},
		{"custom event with only base64 forms", `{"event":"Secret Shared",` + env + `,"properties":{"a":"` + b64 + `","b":"` + b64colon + `"}}`, runtime.Deliver, ""},
		{"secret as order_id", order(`"order_id":"` + secretKey + `","total":1,"currency":"USD","products":[{"sku":"` + b64colon + `","price":1,"name":"` + b64 + `"}]`), runtime.Deliver, ""},
		{"secret as btn_ref", order(`"order_id":"o","btn_ref":"` + secretKey + `","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), runtime.Deliver, ""},
		{"secret in the page URL", `{"event":"Product Added","type":"track","timestamp":"2026-11-24T10:15:30Z","userId":"` + b64colon + `","context":{"consent":{"advertising":true},"user_agent":"` + secretKey + `","page":{"url":"https://x.example/?btn_ref=` + secretKey + `"}},"properties":{"sku":"` + secretKey + `"}}`, runtime.Deliver, ""},
		{"secret as the event name", `{"event":"` + secretKey + `",` + env + `}`, runtime.Skip, runtime.ReasonEventNotMapped},
		{"secret as the event type", `{"type":"` + secretKey + `","event":"Order Completed"}`, runtime.Skip, runtime.ReasonEventNotMapped},
		{"secret as a bad currency", order(`"order_id":"o","total":1,"currency":"` + secretKey + `","products":[{"sku":"s","price":1}]`), runtime.Reject, runtime.ReasonInvalidField},
		{"secret as bad money", order(`"order_id":"o","total":"` + secretKey + `","currency":"USD","products":[{"sku":"s","price":"` + b64colon + `","quantity":"` + b64 + `"}]`), runtime.Reject, runtime.ReasonInvalidField},
		{"secret as a bad time", `{"event":"Order Completed","timestamp":"` + secretKey + `","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`, runtime.Reject, runtime.ReasonInvalidField},
		{"secret in a malformed event", `{"event":"` + secretKey + `"`, runtime.Reject, runtime.ReasonInvalidEvent},
		{"secret as a whole event", `"` + secretKey + `"`, runtime.Reject, runtime.ReasonInvalidEvent},
	}
	bp := secretBlueprint(t)
	for _, variant := range []string{"default", "retail"} {
		in, err := runtime.Bind(bp, variant, map[string]any{"application_id": robustAppID, "api_key": secretKey})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			t.Run(variant+"/"+e.name, func(t *testing.T) {
				res := in.Evaluate([]byte(e.event))
				outcome, reason := e.outcome, e.reason
				if variant == "default" && strings.Contains(e.event, `"Product Added"`) {
					outcome, reason = runtime.Skip, runtime.ReasonEventNotMapped
				}
				if res.Outcome != outcome || res.Reason != reason {
					t.Fatalf("got %s %s (%s), want %s %s", res.Outcome, res.Reason, res.Message, outcome, reason)
				}
				if leaks := secretLeaks(res.String()); len(leaks) > 0 {
					t.Errorf("Result.String() shows %q:\n%s", leaks, res.String())
				}
				for i, q := range res.Requests {
					r := in.Redacted(q)
					view := r.Method + " " + r.URL + "\n" + fmt.Sprint(r.Headers) + "\n" + string(r.Body)
					if leaks := secretLeaks(view); len(leaks) > 0 {
						t.Errorf("Redacted(request %d) shows %q:\n%s", i, leaks, view)
					}
					if auth, ok := r.Headers["Authorization"]; ok && auth != "Basic ***" {
						t.Errorf("redacted Authorization = %q, want Basic ***", auth)
					}
					// The real request works: Basic base64(api_key + ":") on
					// the Order API only.
					auth, hasAuth := q.Header("Authorization")
					if strings.HasPrefix(q.URL, "https://api.usebutton.com/") {
						if want := "Basic " + b64colon; auth != want {
							t.Errorf("real Authorization = %q, want %q", auth, want)
						}
					} else if hasAuth {
						t.Errorf("request to %s carries Authorization %q: the api_key goes to api.usebutton.com only", q.URL, auth)
					}
					if strings.Contains(e.name, "custom event with the secret") && !strings.Contains(string(q.Body), `"token":"`+secretKey+`"`) {
						t.Errorf("the real custom body lost its data: %s", q.Body)
					}
				}
				t.Run("RedactedBodyDecoded", func(t *testing.T) {
					// The redacted body as a JSON reader sees it: a secret
					// written with JSON escapes in the event is the secret.
					for i, q := range res.Requests {
						decoded, err := secretDecode(in.Redacted(q).Body)
						if err != nil {
							t.Fatalf("redacted body %d is not JSON: %v", i, err)
						}
						if leaks := secretLeaks(decoded); len(leaks) > 0 {
							t.Errorf("the redacted body %d, once decoded, shows %q (the event wrote the secret with JSON escapes): %s", i, leaks, decoded)
						}
					}
				})
				t.Run("Message", func(t *testing.T) {
					if leaks := secretLeaks(res.Message); len(leaks) > 0 {
						t.Errorf("Result.Message shows the secret %q (echoed from the event): %q", leaks, res.Message)
					}
				})
			})
		}
	}
}

// secretDecode decodes a JSON body and writes it again without escapes.
func secretDecode(body []byte) (string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// TestSecretNotInConfigError binds configs that hold the api_key but are
// refused: the ConfigError (its text, keys and problems) never shows it.
func TestSecretNotInConfigError(t *testing.T) {
	bp := robustButton(t)
	cases := []struct {
		name   string
		config map[string]any
		keys   []string
	}{
		{"good api_key, application_id not an app id", map[string]any{"application_id": "bad id!", "api_key": secretKey}, []string{"application_id"}},
		{"good api_key, application_id is the secret", map[string]any{"application_id": secretKey, "api_key": secretKey}, []string{"application_id"}},
		{"good api_key, application_id contains the secret", map[string]any{"application_id": "app-" + secretKey, "api_key": secretKey}, []string{"application_id"}},
		{"good api_key, application_id is its base64", map[string]any{"application_id": "app-" + base64.StdEncoding.EncodeToString([]byte(secretKey)), "api_key": secretKey}, []string{"application_id"}},
		{"good api_key, application_id missing", map[string]any{"api_key": secretKey}, []string{"application_id"}},
		{"good api_key, application_id a number", map[string]any{"application_id": 42, "api_key": secretKey}, []string{"application_id"}},
		{"good api_key, unknown key holding it", map[string]any{"application_id": robustAppID, "api_key": secretKey, "apikey": secretKey}, []string{"apikey"}},
		{"api_key as a number", map[string]any{"application_id": "bad id!", "api_key": 1234567}, []string{"api_key", "application_id"}},
		{"api_key as a float", map[string]any{"application_id": robustAppID, "api_key": 1234567.5}, []string{"api_key"}},
		{"api_key as a list holding it", map[string]any{"application_id": robustAppID, "api_key": []any{secretKey}}, []string{"api_key"}},
		{"api_key as a mapping holding it", map[string]any{"application_id": robustAppID, "api_key": map[string]any{"key": secretKey}}, []string{"api_key"}},
		{"api_key as bytes", map[string]any{"application_id": robustAppID, "api_key": []byte(secretKey)}, []string{"api_key"}},
		{"api_key empty", map[string]any{"application_id": robustAppID, "api_key": ""}, []string{"api_key"}},
		{"good api_key, the secret pasted as a key name", map[string]any{"application_id": robustAppID, "api_key": secretKey, secretKey: true}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := runtime.Bind(bp, "retail", c.config)
			if in != nil || err == nil {
				t.Fatalf("Bind accepted the config")
			}
			var ce *runtime.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v, want *runtime.ConfigError", err, err)
			}
			if c.keys == nil && len(ce.Keys) != 1 {
				t.Errorf("keys %q, want one key", ce.Keys)
			}
			if c.keys != nil && !robustSameSet(ce.Keys, c.keys) {
				t.Errorf("keys %q, want %q", ce.Keys, c.keys)
			}
			var p robustProblems
			forms := append([]string{}, secretForms...)
			if n, ok := c.config["api_key"].(int); ok {
				forms = append(forms, fmt.Sprint(n))
			}
			if x, ok := c.config["api_key"].(float64); ok {
				forms = append(forms, fmt.Sprint(x))
			}
			for _, view := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", ce), fmt.Sprintf("%#v", ce), fmt.Sprint(ce.Problems), strings.Join(ce.Keys, ",")} {
				for _, f := range forms {
					if strings.Contains(view, f) {
						p.add("shows %q: %s", f, view)
					}
				}
			}
			robustFinish(t, p)
		})
	}
}
