package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// End to end, for the four affiliate blueprints (impact_radius,
// commission_junction, rakuten, awin): blueprint send, in-process, with
// the contract's canonical event and config, against a local server that
// records what it receives. The server must get exactly the contract's
// request (method, path, query, headers with the real credential, body
// bytes), and the vendor's answers must land as the contract's response
// rules say: delivered, failed at once (a dead letter after one attempt),
// or retried.

// canonicalOrder is the canonical event of docs/vendors-common.md.
const canonicalOrder = `{"type":"track","event":"Order Completed","messageId":"m-1","anonymousId":"anon-1","userId":"u-1","timestamp":"2026-02-25T14:30:00.000Z","context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/checkout?irclickid=ic-1&awc=aw-1&cjevent=cj-1&ranSiteID=rs-1&ranLand=20260225_1400","referrer":"https://ref.example/"},"consent":{"advertising":true,"analytics":true},"traits":{"email":" Jane@Example.com "}},"properties":{"order_id":"o-1","total":30.5,"revenue":25.5,"subtotal":"25.50","tax":3,"shipping":2,"currency":"usd","coupon":"SAVE5","products":[{"product_id":"p-1","sku":"S-1","name":"Tee","category":"Shirts","brand":"Acme","price":"12.75","quantity":2}]}}`

// received is one request as the vendor got it.
type received struct {
	method, path, query string
	header              http.Header
	body                string
}

// reply is one scripted vendor answer.
type reply struct {
	status int
	body   string
}

// vendorServer records every request and answers them in turn with its
// replies (the last one again once they run out).
type vendorServer struct {
	mu      sync.Mutex
	got     []received
	replies []reply
}

func (v *vendorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	v.mu.Lock()
	v.got = append(v.got, received{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: string(body)})
	rp := v.replies[min(len(v.got), len(v.replies))-1]
	v.mu.Unlock()
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func (v *vendorServer) requests() []received {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]received(nil), v.got...)
}

// affiliate is a vendor's canonical case: its config, and the exact
// request its contract gives for the canonical event.
type affiliate struct {
	key    string
	config []string
	method string
	path   string
	query  string
	header map[string]string // exact values; "" must be absent
	body   string
	// ok is the vendor's answer for an accepted order.
	ok reply
}

var affiliates = []affiliate{
	{
		key:    "impact_radius",
		config: []string{"account_sid=IRabc123XYZ", "auth_token=tok-secret", "program_id=1000", "action_tracker_id=2000"},
		method: "POST",
		path:   "/Advertisers/IRabc123XYZ/Conversions",
		header: map[string]string{
			"Authorization": "Basic SVJhYmMxMjNYWVo6dG9rLXNlY3JldA==", // base64 of IRabc123XYZ:tok-secret
			"Accept":        "application/json",
			"Content-Type":  "application/x-www-form-urlencoded",
		},
		body: "CampaignId=1000&ActionTrackerId=2000&EventDate=2026-02-25T14%3A30%3A00Z&OrderId=o-1&ClickId=ic-1&CustomerId=u-1&CustomProfileId=anon-1&CustomerEmail=0850a4cffb73cbc53fd33e8990c2184c915ff041&CurrencyCode=USD&OrderPromoCode=SAVE5&IpAddress=203.0.113.9&UserAgent=Mozilla%2F5.0&PageUrl=https%3A%2F%2Fshop.example%2Fcheckout%3Firclickid%3Dic-1%26awc%3Daw-1%26cjevent%3Dcj-1%26ranSiteID%3Drs-1%26ranLand%3D20260225_1400&ReferringUrl=https%3A%2F%2Fref.example%2F&ItemSku1=S-1&ItemName1=Tee&ItemCategory1=Shirts&ItemBrand1=Acme&ItemPrice1=12.75&ItemQuantity1=2",
		ok:   reply{200, `{"Status":"QUEUED","QueuedUri":"/Advertisers/IRabc123XYZ/APISubmissions/A-1"}`},
	},
	{
		key:    "commission_junction",
		config: []string{"enterprise_id=1234567", "personal_key=pk-secret", "advertiser_id=7654321", "action_id=424242"},
		method: "POST",
		path:   "/graphql",
		header: map[string]string{
			"Authorization": "Bearer pk-secret",
			"Content-Type":  "application/json",
		},
		body: `{"query":"mutation CreateOrders($newOrders: [OrderCreateRequest!]!) { createOrders(newOrders: $newOrders) { orders { submissionId orderId } errors { message fields } } }","variables":{"newOrders":[{"enterpriseId":"1234567","actionTrackerId":424242,"orderId":"o-1","eventTime":"2026-02-25T14:30:00Z","cjEvent":"cj-1","amount":"25.50","currency":"USD","coupon":"SAVE5","items":[{"sku":"S-1","unitPrice":"12.75","quantity":2}]}]}}`,
		ok:   reply{200, `{"data":{"createOrders":{"orders":[{"submissionId":"s-1","orderId":"o-1"}],"errors":null}}}`},
	},
	{
		key:    "rakuten",
		config: []string{"mid=3456"},
		method: "GET",
		path:   "/ep",
		query:  "mid=3456&ord=o-1&tr=rs-1&land=20260225_1400&date=20260225_1430&cur=USD&skulist=S-1&qlist=2&amtlist=2550&namelist=Tee&catlist=Shirts&brandlist=Acme&coupon=SAVE5&custid=u-1&xml=1",
		header: map[string]string{"Authorization": ""},
		ok:     reply{200, `<response><good>1</good><bad>0</bad></response>`},
	},
	{
		key:    "awin",
		config: []string{"advertiser_id=12345", "api_key=awk-secret"},
		method: "POST",
		path:   "/s2s/advertiser/12345/orders",
		header: map[string]string{
			"x-api-key":     "awk-secret",
			"Content-Type":  "application/json",
			"Authorization": "",
		},
		body: `{"orders":[{"orderReference":"o-1","amount":25.50,"currency":"USD","channel":"aw","awc":"aw-1","voucher":"SAVE5","isTest":false,"commissionGroups":[{"code":"DEFAULT","amount":25.50}],"basket":[{"id":"p-1","sku":"S-1","name":"Tee","price":12.75,"quantity":2,"category":"Shirts","commissionGroupCode":"DEFAULT"}]}]}`,
		ok:   reply{202, `{"batchId":"b-1"}`},
	},
}

// sendCanonical runs blueprint send with the vendor's config and the
// canonical event against a server answering replies, and returns what it
// received, the summary counts and the dead letters.
func sendCanonical(t *testing.T, a affiliate, replies ...reply) (got []received, delivered, dead int, letters []deadLetter) {
	t.Helper()
	vs := &vendorServer{replies: replies}
	hs := httptest.NewServer(vs)
	t.Cleanup(hs.Close)
	state := t.TempDir()
	args := []string{"send", "--blueprint", a.key, "--state", state, "--vendor-url", hs.URL,
		"--retry-base", "1ms", "--retry-cap", "5ms", "--max-attempts", "3", "--progress", "none"}
	for _, c := range a.config {
		args = append(args, "--config", c)
	}
	out, errs, code := cli(t, canonicalOrder+"\n", append(args, "-")...)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
	}
	d, skipped, rejected, dl := summary(t, out)
	if skipped != 0 || rejected != 0 || d+dl != 1 {
		t.Fatalf("summary %q: want the one order delivered or dead-lettered", lastLine(out))
	}
	list, _, code := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	if code != 0 {
		t.Fatalf("dlq list: exit %d", code)
	}
	if err := json.Unmarshal([]byte(list), &letters); err != nil && dl > 0 {
		t.Fatalf("dlq list: %v\n%s", err, list)
	}
	for _, text := range []string{out, errs, list} {
		for _, secret := range []string{"tok-secret", "pk-secret", "awk-secret"} {
			if strings.Contains(text, secret) {
				t.Errorf("the CLI printed the secret %s:\n%s", secret, text)
			}
		}
	}
	return vs.requests(), d, dl, letters
}

type deadLetter struct {
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status"`
	LastError  string `json:"last_error"`
}

// The canonical event reaches the vendor exactly as the contract writes
// it, with the real credential, and the vendor's acceptance is delivered.
func TestAffiliatesCanonicalRequest(t *testing.T) {
	for _, a := range affiliates {
		t.Run(a.key, func(t *testing.T) {
			got, delivered, dead, _ := sendCanonical(t, a, a.ok)
			if delivered != 1 || dead != 0 || len(got) != 1 {
				t.Fatalf("%d delivered, %d dead, %d requests; want 1, 0, 1", delivered, dead, len(got))
			}
			r := got[0]
			if r.method != a.method || r.path != a.path || r.query != a.query {
				t.Errorf("request %s %s?%s\nwant    %s %s?%s", r.method, r.path, r.query, a.method, a.path, a.query)
			}
			for name, want := range a.header {
				if vals := r.header.Values(name); want == "" && len(vals) > 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
					t.Errorf("header %s: %q, want %q", name, vals, want)
				}
			}
			if r.body != a.body {
				t.Errorf("body:\n%s\nwant:\n%s", r.body, a.body)
			}
		})
	}
}

// Each vendor's answers, as its contract's response rules say: a
// permanent failure is a dead letter after one attempt, with the
// contract's message; a retryable one is tried again (and delivered when
// the vendor then accepts).
func TestAffiliatesResponses(t *testing.T) {
	byKey := map[string]affiliate{}
	for _, a := range affiliates {
		byKey[a.key] = a
	}
	cases := []struct {
		name, key string
		replies   []reply
		delivered bool
		attempts  int    // requests the vendor received
		status    int    // the dead letter's last status
		message   string // in the dead letter's last error
	}{
		{name: "400 is failed with errors[0].message", key: "impact_radius",
			replies:  []reply{{400, `{"Status":"ERROR","errors":[{"field":"EventDate","level":"ERROR","message":"EventDate is too old"}]}`}},
			attempts: 1, status: 400, message: "EventDate is too old"},
		{name: "401 is failed, bad account_sid or auth_token", key: "impact_radius",
			replies:  []reply{{401, `{"status":401,"title":"Unauthorized"}`}},
			attempts: 1, status: 401, message: "bad account_sid or auth_token (Impact answered 401 Unauthorized)"},
		{name: "200 Status ERROR is failed", key: "impact_radius",
			replies:  []reply{{200, `{"Status":"ERROR","errors":[{"message":"Invalid CampaignId"}]}`}},
			attempts: 1, status: 200, message: "Invalid CampaignId"},
		{name: "503 is retried, then delivered", key: "impact_radius",
			replies:  []reply{{503, `busy`}, byKey["impact_radius"].ok},
			attempts: 2, delivered: true},
		{name: "200 with createOrders errors is failed", key: "commission_junction",
			replies:  []reply{{200, `{"data":{"createOrders":{"orders":null,"errors":[{"message":"Invalid action tracker","fields":["actionTrackerId"]}]}}}`}},
			attempts: 1, status: 200, message: "Invalid action tracker"},
		{name: "403 is failed, bad personal_key", key: "commission_junction",
			replies:  []reply{{403, `{"errors":[{"message":"Forbidden"}]}`}},
			attempts: 1, status: 403, message: "bad personal_key, or the token has no access to enterprise_id (CJ answered 401/403)"},
		{name: "502 is retried until the attempts run out", key: "commission_junction",
			replies:  []reply{{502, `bad gateway`}},
			attempts: 3, status: 502},
		{name: "400 is failed, the mid is not valid", key: "rakuten",
			replies:  []reply{{400, `Bad Request`}},
			attempts: 1, status: 400, message: "Rakuten refused the request (400): the mid is not valid"},
		{name: "200 with Access denied is failed", key: "rakuten",
			replies:  []reply{{200, `<response><error>Access denied</error></response>`}},
			attempts: 1, status: 200, message: "Rakuten: Access denied (server-to-server tracking is not enabled for this mid)"},
		{name: "200 with bad records is failed", key: "rakuten",
			replies:  []reply{{200, `<response><good>0</good><bad>1</bad></response>`}},
			attempts: 1, status: 200, message: "Rakuten counted 1 bad record(s)"},
		{name: "500 is retried, then delivered", key: "rakuten",
			replies:  []reply{{500, `oops`}, byKey["rakuten"].ok},
			attempts: 2, delivered: true},
		{name: "401 is failed, bad api_key", key: "awin",
			replies:  []reply{{401, `Unauthorized`}},
			attempts: 1, status: 401, message: "bad api_key, or the key has no access to advertiser_id (AWIN answered 401/403)"},
		{name: "400 is failed with the start of the body", key: "awin",
			replies:  []reply{{400, `currency must be ISO 4217`}},
			attempts: 1, status: 400, message: "currency must be ISO 4217"},
		{name: "429 is retried, then delivered", key: "awin",
			replies:  []reply{{429, `slow down`}, byKey["awin"].ok},
			attempts: 2, delivered: true},
	}
	for _, c := range cases {
		t.Run(c.key+"/"+c.name, func(t *testing.T) {
			got, delivered, dead, letters := sendCanonical(t, byKey[c.key], c.replies...)
			if len(got) != c.attempts {
				t.Errorf("the vendor got %d requests, want %d", len(got), c.attempts)
			}
			for i, r := range got[1:] {
				if r.body != got[0].body || r.query != got[0].query {
					t.Errorf("attempt %d sent another request than the first", i+2)
				}
			}
			if c.delivered {
				if delivered != 1 || dead != 0 {
					t.Errorf("%d delivered, %d dead; want delivered", delivered, dead)
				}
				return
			}
			if delivered != 0 || dead != 1 || len(letters) != 1 {
				t.Fatalf("%d delivered, %d dead, %d dead letters; want one dead letter", delivered, dead, len(letters))
			}
			dl := letters[0]
			if dl.Attempts != c.attempts || dl.LastStatus != c.status || !strings.Contains(dl.LastError, c.message) {
				t.Errorf("dead letter: %d attempts, status %d, %q; want %d, %d, %q", dl.Attempts, dl.LastStatus, dl.LastError, c.attempts, c.status, c.message)
			}
		})
	}
}

// Impact's page_loads variant: the canonical page view reaches the
// PageLoad endpoint with the same Basic auth, and its form body, parsed as
// Impact parses it (url.ParseQuery of an x-www-form-urlencoded body), holds
// exactly vendors.md's pairs: CampaignId, PageUrl, ReferringUrl,
// IpAddress, UserAgent and CustomProfileId, each once.
func TestImpactPageLoadCanonical(t *testing.T) {
	vs := &vendorServer{replies: []reply{{200, `{"Status":"QUEUED","QueuedUri":"/PageLoad/1"}`}}}
	hs := httptest.NewServer(vs)
	t.Cleanup(hs.Close)
	const page = `{"type":"page","name":"Checkout","messageId":"m-2","anonymousId":"anon-1","userId":"u-1","timestamp":"2026-02-25T14:29:00.000Z","context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/checkout?irclickid=ic-1","referrer":"https://ref.example/","title":"Checkout"},"consent":{"advertising":true,"analytics":true}}}`
	args := []string{"send", "--blueprint", "impact_radius", "--variant", "page_loads", "--state", t.TempDir(), "--vendor-url", hs.URL, "--progress", "none"}
	for _, c := range affiliates[0].config {
		args = append(args, "--config", c)
	}
	out, errs, code := cli(t, page+"\n", append(args, "-")...)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, dl := summary(t, out); d != 1 || dl != 0 {
		t.Fatalf("summary %q: want the page view delivered", lastLine(out))
	}
	got := vs.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != "POST" || r.path != "/PageLoad" || r.query != "" {
		t.Errorf("request %s %s?%s, want POST /PageLoad", r.method, r.path, r.query)
	}
	for name, want := range map[string]string{
		"Authorization": "Basic SVJhYmMxMjNYWVo6dG9rLXNlY3JldA==",
		"Accept":        "application/json",
		"Content-Type":  "application/x-www-form-urlencoded",
	} {
		if v := r.header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("header %s: %q, want %q", name, v, want)
		}
	}
	form, err := url.ParseQuery(r.body)
	if err != nil {
		t.Fatalf("the body does not parse as a form: %v\n%s", err, r.body)
	}
	want := url.Values{
		"CampaignId":      {"1000"},
		"PageUrl":         {"https://shop.example/checkout?irclickid=ic-1"},
		"ReferringUrl":    {"https://ref.example/"},
		"IpAddress":       {"203.0.113.9"},
		"UserAgent":       {"Mozilla/5.0"},
		"CustomProfileId": {"anon-1"},
	}
	if !reflect.DeepEqual(form, want) {
		t.Errorf("form pairs\n%v\nwant\n%v", form, want)
	}
}
