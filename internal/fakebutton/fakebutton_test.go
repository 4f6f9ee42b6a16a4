package fakebutton

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "sk-test-secret-42"

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

var goodAuth = basic(testKey, "")

func orderBody(id string) string {
	return fmt.Sprintf(`{"order_id":%q,"total":2550,"currency":"USD","purchase_date":"2026-11-24T10:15:30Z","btn_ref":"srctok-0123456789abcdef","customer":{"id":"u-1"},"line_items":[{"identifier":"p-1","total":2550,"amount":2550,"quantity":1}]}`, id)
}

func eventBody(name string) string {
	return fmt.Sprintf(`{"application_id":"app-abc123","name":%q,"time":"2026-11-24T10:15:30Z","value":{"id":"p-1"}}`, name)
}

// fake starts s behind httptest and returns a client with its own transport.
func fake(t *testing.T, opts Options) (*Server, string, *http.Client) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
	})
	return s, ts.URL, &http.Client{Transport: tr}
}

type reply struct {
	status int
	header http.Header
	body   []byte
	err    error // a network error: no answer
}

// post sends one request and checks what every answer must be: JSON, in
// Button's shape, never holding the API key.
func post(t *testing.T, c *http.Client, method, url, auth, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{err: err}
	}
	checkBody(t, resp.StatusCode, resp.Header, b)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func checkBody(t *testing.T, status int, h http.Header, b []byte) {
	t.Helper()
	for _, secret := range []string{testKey, base64.StdEncoding.EncodeToString([]byte(testKey + ":")), DefaultAPIKey} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("response body holds the API key: %s", b)
		}
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m struct {
		Meta struct {
			Status string `json:"status"`
		} `json:"meta"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("body is not JSON: %s", b)
		return
	}
	if status == http.StatusOK {
		if m.Meta.Status != "ok" || m.Error != nil {
			t.Errorf("200 body: %s", b)
		}
	} else if m.Meta.Status != "error" || m.Error == nil || m.Error.Message == "" {
		t.Errorf("%d body is not Button's error JSON: %s", status, b)
	}
}

func TestFakeButtonStatusCodes(t *testing.T) {
	s, url, c := fake(t, Options{})
	order := func(mod func(map[string]any)) string {
		var m map[string]any
		json.Unmarshal([]byte(orderBody("o-x")), &m)
		mod(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(ks ...string) func(map[string]any) {
		return func(m map[string]any) {
			for _, k := range ks {
				delete(m, k)
			}
		}
	}
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		want                           []string // substrings of the body
	}{
		{"order ok", "POST", OrderPath, goodAuth, orderBody("o-1"), 200, []string{`"order_id":"o-1"`, `"status":"open"`, `"total":2550`, `"currency":"USD"`}},
		{"order minimal", "POST", OrderPath, goodAuth, `{"order_id":"o-2","total":0,"currency":"JPY","purchase_date":"2026-11-24T10:15:30+09:00"}`, 200, nil},
		{"no auth", "POST", OrderPath, "", orderBody("o-3"), 401, []string{"missing API key"}},
		{"wrong key", "POST", OrderPath, basic("sk-wrong", ""), orderBody("o-3"), 401, []string{"invalid API key"}},
		{"key as password", "POST", OrderPath, basic("", testKey), orderBody("o-3"), 401, []string{"invalid API key"}},
		{"non-empty password", "POST", OrderPath, basic(testKey, "x"), orderBody("o-3"), 401, []string{"password must be empty"}},
		{"bearer", "POST", OrderPath, "Bearer " + testKey, orderBody("o-3"), 401, []string{"Basic"}},
		{"401 before 400", "POST", OrderPath, basic("sk-wrong", ""), `nope`, 401, nil},
		{"not JSON", "POST", OrderPath, goodAuth, `{"order_id":`, 400, []string{"JSON object"}},
		{"JSON array", "POST", OrderPath, goodAuth, `[1]`, 400, []string{"JSON object"}},
		{"JSON null", "POST", OrderPath, goodAuth, `null`, 400, []string{"JSON object"}},
		{"empty body", "POST", OrderPath, goodAuth, ``, 400, []string{"JSON object"}},
		{"missing order_id", "POST", OrderPath, goodAuth, order(del("order_id")), 400, []string{"missing required field(s): order_id"}},
		{"empty order_id", "POST", OrderPath, goodAuth, order(set("order_id", "")), 400, []string{"order_id"}},
		{"numeric order_id", "POST", OrderPath, goodAuth, order(set("order_id", 12)), 400, []string{"invalid field(s): order_id"}},
		{"missing total", "POST", OrderPath, goodAuth, order(del("total")), 400, []string{"missing required field(s): total"}},
		{"null total", "POST", OrderPath, goodAuth, order(set("total", nil)), 400, []string{"missing required field(s): total"}},
		{"negative total", "POST", OrderPath, goodAuth, order(set("total", -1)), 400, []string{"invalid field(s): total"}},
		{"fractional total", "POST", OrderPath, goodAuth, order(set("total", 25.5)), 400, []string{"total: must be a non-negative integer"}},
		{"string total", "POST", OrderPath, goodAuth, order(set("total", "2550")), 400, []string{"total"}},
		{"exponent total", "POST", OrderPath, goodAuth, `{"order_id":"o-e","total":1e3,"currency":"USD","purchase_date":"2026-11-24T10:15:30Z"}`, 400, []string{"total"}},
		{"missing currency", "POST", OrderPath, goodAuth, order(del("currency")), 400, []string{"missing required field(s): currency"}},
		{"lower-case currency", "POST", OrderPath, goodAuth, order(set("currency", "usd")), 400, []string{"invalid field(s): currency"}},
		{"two-letter currency", "POST", OrderPath, goodAuth, order(set("currency", "US")), 400, []string{"currency"}},
		{"four-letter currency", "POST", OrderPath, goodAuth, order(set("currency", "USDX")), 400, []string{"currency"}},
		{"missing purchase_date", "POST", OrderPath, goodAuth, order(del("purchase_date")), 400, []string{"missing required field(s): purchase_date"}},
		{"date-only purchase_date", "POST", OrderPath, goodAuth, order(set("purchase_date", "2026-11-24")), 400, []string{"invalid field(s): purchase_date"}},
		{"bad purchase_date", "POST", OrderPath, goodAuth, order(set("purchase_date", "yesterday")), 400, []string{"purchase_date"}},
		{"every field missing", "POST", OrderPath, goodAuth, `{}`, 400, []string{"order_id, total, currency, purchase_date"}},
		{"missing and invalid", "POST", OrderPath, goodAuth, order(func(m map[string]any) { delete(m, "total"); m["currency"] = "usd" }), 400, []string{"missing required field(s): total", "invalid field(s): currency"}},
		{"line item without total", "POST", OrderPath, goodAuth, order(set("line_items", []any{map[string]any{"identifier": "a", "total": 1}, map[string]any{"identifier": "b"}})), 400, []string{"line_items[1].total"}},
		{"line item bad quantity", "POST", OrderPath, goodAuth, order(set("line_items", []any{map[string]any{"identifier": "a", "total": 1, "quantity": 0}})), 400, []string{"line_items[0].quantity"}},
		{"line items not array", "POST", OrderPath, goodAuth, order(set("line_items", "x")), 400, []string{"line_items"}},
		{"customer without id", "POST", OrderPath, goodAuth, order(set("customer", map[string]any{"email_sha256": strings.Repeat("a", 64)})), 400, []string{"customer.id"}},
		{"event ok", "POST", EventsPath, "", eventBody("add_to_cart"), 200, nil},
		{"event with auth header", "POST", EventsPath, goodAuth, eventBody("custom"), 200, nil},
		{"event bad application_id", "POST", EventsPath, "", `{"application_id":"abc","name":"add_to_cart","time":"2026-11-24T10:15:30Z"}`, 400, []string{"application_id"}},
		{"event application_id with dash", "POST", EventsPath, "", `{"application_id":"app-ab-c","name":"add_to_cart","time":"2026-11-24T10:15:30Z"}`, 400, []string{"application_id"}},
		{"event missing name", "POST", EventsPath, "", `{"application_id":"app-abc","time":"2026-11-24T10:15:30Z"}`, 400, []string{"missing required field(s): name"}},
		{"event bad time", "POST", EventsPath, "", `{"application_id":"app-abc","name":"x","time":"24/11/2026"}`, 400, []string{"invalid field(s): time"}},
		{"event missing time", "POST", EventsPath, "", `{"application_id":"app-abc","name":"x"}`, 400, []string{"time"}},
		{"event not JSON", "POST", EventsPath, "", `hello`, 400, []string{"JSON object"}},
		{"GET order", "GET", OrderPath, goodAuth, "", 405, []string{"POST"}},
		{"PUT order", "PUT", OrderPath, goodAuth, orderBody("o-9"), 405, nil},
		{"GET events", "GET", EventsPath, "", "", 405, nil},
		{"unknown path", "POST", "/v1/orders", goodAuth, orderBody("o-9"), 404, []string{"not found"}},
		{"order update", "POST", "/v1/order/o-1", goodAuth, orderBody("o-1"), 404, nil},
		{"root", "GET", "/", "", "", 404, nil},
	}
	want := map[int]int64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, c, tt.method, url+tt.path, tt.auth, tt.body)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("body lacks %q: %s", w, r.body)
				}
			}
			if r.status == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
			if r.status == 401 && !strings.HasPrefix(string(r.body), `{"meta":{"status":"error"},"error":{"message":`) {
				t.Errorf("401 body %s", r.body)
			}
		})
		want[tt.status]++
	}
	st := s.Stats()
	got := map[int]int64{200: st.Created + st.Events, 400: st.BadRequests, 401: st.Unauthorized, 404: st.NotFound, 405: st.MethodNotAllowed}
	for code, n := range want {
		if got[code] != n {
			t.Errorf("stats for %d: %d, want %d (%+v)", code, got[code], n, st)
		}
	}
	if st.Requests != int64(len(tests)) {
		t.Errorf("Requests %d, want %d", st.Requests, len(tests))
	}
	if len(s.Orders()) != 2 || len(s.Events()) != 2 {
		t.Errorf("recorded %d orders, %d events", len(s.Orders()), len(s.Events()))
	}
}

func TestFakeButtonOrderCreatedThenConflict(t *testing.T) {
	s, url, c := fake(t, Options{Seed: 3})
	r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody("o-1"))
	if r.status != 200 {
		t.Fatalf("first create: %d %s", r.status, r.body)
	}
	var got struct {
		Object map[string]any `json:"object"`
	}
	json.Unmarshal(r.body, &got)
	id, _ := got.Object["button_order_id"].(string)
	if !regexp.MustCompile(`^btnorder-[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("button_order_id %q", id)
	}
	if got.Object["btn_ref"] != "srctok-0123456789abcdef" || got.Object["purchase_date"] != "2026-11-24T10:15:30Z" {
		t.Errorf("object %v", got.Object)
	}

	second := strings.Replace(orderBody("o-1"), `"total":2550,"currency"`, `"total":9999,"currency"`, 1)
	r = post(t, c, "POST", url+OrderPath, goodAuth, second)
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "order already exists") {
		t.Fatalf("second create: %d %s", r.status, r.body)
	}
	o, ok := s.Order("o-1")
	if !ok || o.Total != 2550 || o.ButtonOrderID != id || o.Currency != "USD" || o.BtnRef != "srctok-0123456789abcdef" || o.Dropped {
		t.Errorf("recorded %+v", o)
	}
	if !json.Valid(o.Body) || !strings.Contains(string(o.Body), `"total":2550`) {
		t.Errorf("recorded body %s", o.Body)
	}
	st := s.Stats()
	if st.Created != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFakeButtonEventsRecorded(t *testing.T) {
	s, url, c := fake(t, Options{})
	for _, name := range []string{"add_to_cart", "wishlist"} {
		if r := post(t, c, "POST", url+EventsPath, "", eventBody(name)); r.status != 200 || string(r.body) != `{"meta":{"status":"ok"}}`+"\n" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	evs := s.Events()
	if len(evs) != 2 || evs[0].Name != "add_to_cart" || evs[1].Name != "wishlist" || evs[0].ApplicationID != "app-abc123" ||
		evs[0].Time != "2026-11-24T10:15:30Z" || evs[0].Host == "" || !strings.Contains(string(evs[0].Body), `"value":{"id":"p-1"}`) {
		t.Errorf("events %+v", evs)
	}
}

func TestFakeButtonInjectedErrorsAndThrottle(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		retryAfter string
	}{
		{"errors", Options{ErrorRate: 1}, ""},
		{"throttle 1.5s", Options{ThrottleRate: 1, RetryAfter: 1500 * time.Millisecond}, "2"},
		{"throttle 0", Options{ThrottleRate: 1}, "0"},
		{"throttle 30s", Options{ThrottleRate: 1, RetryAfter: 30 * time.Second}, "30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url, c := fake(t, tt.opts)
			codes := map[int]bool{}
			for i := range 40 {
				path, auth, body := OrderPath, goodAuth, orderBody(fmt.Sprint("o-", i))
				if i%2 == 1 {
					path, auth, body = EventsPath, "", eventBody("add_to_cart")
				}
				r := post(t, c, "POST", url+path, auth, body)
				if r.err != nil {
					t.Fatal(r.err)
				}
				codes[r.status] = true
				if tt.retryAfter != "" {
					if r.status != 429 || r.header.Get("Retry-After") != tt.retryAfter {
						t.Fatalf("%d Retry-After %q, want 429 %q", r.status, r.header.Get("Retry-After"), tt.retryAfter)
					}
				} else if r.status != 500 && r.status != 502 && r.status != 503 {
					t.Fatalf("status %d", r.status)
				}
			}
			if tt.retryAfter == "" && len(codes) != 3 {
				t.Errorf("error statuses seen: %v, want 500, 502 and 503", codes)
			}
			st := s.Stats()
			if len(s.Orders()) != 0 || len(s.Events()) != 0 || st.Created != 0 || st.Events != 0 {
				t.Errorf("recorded something: %+v", st)
			}
			if st.ServerErrors+st.Throttled != 40 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestFakeButtonDropBefore(t *testing.T) {
	s, url, c := fake(t, Options{DropBeforeRate: 1})
	if r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody("o-1")); r.err == nil {
		t.Fatalf("order answered: %d %s", r.status, r.body)
	}
	if r := post(t, c, "POST", url+EventsPath, "", eventBody("add_to_cart")); r.err == nil {
		t.Fatalf("event answered: %d %s", r.status, r.body)
	}
	st := s.Stats()
	if len(s.Orders()) != 0 || len(s.Events()) != 0 || st.DroppedBefore != 2 || st.Created != 0 {
		t.Errorf("stats %+v, %d orders", st, len(s.Orders()))
	}
	// Not the endpoints: no faults.
	if r := post(t, c, "POST", url+"/nope", "", ""); r.status != 404 {
		t.Errorf("404 path: %+v", r)
	}
}

// A dropped answer after the create: the client retries, as a real client
// does after a network error, and meets 409.
func TestFakeButtonDropAfterThenRetryConflicts(t *testing.T) {
	s, url, c := fake(t, Options{DropAfterRate: 0.5, Seed: 11})
	dropped := ""
	for i := 0; i < 100 && dropped == ""; i++ {
		id := fmt.Sprint("o-", i)
		if r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody(id)); r.err != nil {
			dropped = id
		} else if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if dropped == "" {
		t.Fatal("no request dropped")
	}
	o, ok := s.Order(dropped)
	if !ok || !o.Dropped {
		t.Fatalf("dropped order not recorded: %+v", o)
	}
	for i := 0; ; i++ {
		r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody(dropped))
		if r.err != nil {
			if i > 50 {
				t.Fatal("every retry dropped")
			}
			continue
		}
		if r.status != http.StatusConflict {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
		break
	}
	st := s.Stats()
	if st.Duplicates < 1 || st.DroppedAfter < 1 || int64(len(s.Orders())) != st.Created {
		t.Errorf("stats %+v", st)
	}

	// Events are recorded too.
	s2, url2, c2 := fake(t, Options{DropAfterRate: 1})
	if r := post(t, c2, "POST", url2+EventsPath, "", eventBody("add_to_cart")); r.err == nil {
		t.Fatalf("event answered: %d", r.status)
	}
	if evs := s2.Events(); len(evs) != 1 || !evs[0].Dropped {
		t.Errorf("events %+v", evs)
	}
}

// Rates are honoured over 2000 requests from 16 concurrent clients, and
// every client-side outcome matches the counts.
func TestFakeButtonFaultRates(t *testing.T) {
	opts := Options{ErrorRate: 0.1, ThrottleRate: 0.1, DropBeforeRate: 0.05, DropAfterRate: 0.05, Seed: 42}
	s, url, c := fake(t, opts)
	const n, workers = 2000, 16
	var (
		mu       sync.Mutex
		byStatus = map[int]int64{}
		netErrs  int64
		noRetry  int
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				path, auth, body := OrderPath, goodAuth, orderBody(fmt.Sprint("o-", i))
				if i%5 == 4 {
					path, auth, body = EventsPath, "", eventBody("add_to_cart")
				}
				r := post(t, c, "POST", url+path, auth, body)
				mu.Lock()
				if r.err != nil {
					netErrs++
				} else {
					byStatus[r.status]++
					if r.status == 429 && r.header.Get("Retry-After") == "" {
						noRetry++
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Readers at the same time, for the race detector.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Stats()
				_ = s.Orders()
				_ = s.Events()
				_ = s.Summary()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(stop)
	rwg.Wait()

	st := s.Stats()
	if st.Requests != n {
		t.Fatalf("Requests %d", st.Requests)
	}
	for _, f := range []struct {
		name string
		got  int64
		p    float64
	}{
		{"server errors", st.ServerErrors, opts.ErrorRate},
		{"throttled", st.Throttled, opts.ThrottleRate},
		{"dropped before", st.DroppedBefore, opts.DropBeforeRate},
		{"dropped after", st.DroppedAfter, opts.DropAfterRate},
	} {
		mean := n * f.p
		tol := 5 * math.Sqrt(n*f.p*(1-f.p))
		if math.Abs(float64(f.got)-mean) > tol {
			t.Errorf("%s: %d, want %.0f ± %.0f", f.name, f.got, mean, tol)
		}
	}
	if got := byStatus[500] + byStatus[502] + byStatus[503]; got != st.ServerErrors || byStatus[500] == 0 || byStatus[502] == 0 || byStatus[503] == 0 {
		t.Errorf("client saw 5xx %v, stats %d", byStatus, st.ServerErrors)
	}
	if byStatus[429] != st.Throttled || noRetry != 0 {
		t.Errorf("client saw %d 429 (%d without Retry-After), stats %d", byStatus[429], noRetry, st.Throttled)
	}
	if netErrs != st.DroppedBefore+st.DroppedAfter {
		t.Errorf("client saw %d network errors, stats %d+%d", netErrs, st.DroppedBefore, st.DroppedAfter)
	}
	if byStatus[200] != st.Created+st.Events-st.DroppedAfter {
		t.Errorf("client saw %d 200, stats %+v", byStatus[200], st)
	}
	orders, evs := s.Orders(), s.Events()
	if int64(len(orders)) != st.Created || int64(len(evs)) != st.Events {
		t.Errorf("%d orders, %d events recorded; stats %+v", len(orders), len(evs), st)
	}
	var droppedRecords int64
	for _, o := range orders {
		if o.Dropped {
			droppedRecords++
		}
	}
	for _, e := range evs {
		if e.Dropped {
			droppedRecords++
		}
	}
	if droppedRecords != st.DroppedAfter {
		t.Errorf("%d records marked dropped, %d dropped after", droppedRecords, st.DroppedAfter)
	}
	if st.Created+st.Events+st.ServerErrors+st.Throttled+st.DroppedBefore != n {
		t.Errorf("outcomes do not add up: %+v", st)
	}
}

// outcomes sends the same sequence of requests, one at a time.
func outcomes(t *testing.T, s *Server, url string, c *http.Client) []string {
	t.Helper()
	var out []string
	for i := range 300 {
		path, auth, body := OrderPath, goodAuth, orderBody(fmt.Sprint("o-", i%250)) // some duplicates
		if i%7 == 0 {
			path, auth, body = EventsPath, "", eventBody("add_to_cart")
		}
		r := post(t, c, "POST", url+path, auth, body)
		if r.err != nil {
			out = append(out, "drop")
			continue
		}
		var m struct {
			Object struct {
				ID string `json:"button_order_id"`
			} `json:"object"`
		}
		json.Unmarshal(r.body, &m)
		out = append(out, fmt.Sprint(r.status, m.Object.ID))
	}
	ids := []string{}
	for _, o := range s.Orders() {
		ids = append(ids, o.OrderID+"="+o.ButtonOrderID)
	}
	slices.Sort(ids)
	return append(out, ids...)
}

func TestFakeButtonDeterministic(t *testing.T) {
	opts := Options{ErrorRate: 0.15, ThrottleRate: 0.15, DropBeforeRate: 0.1, DropAfterRate: 0.1, Seed: 7}
	s1, url1, c1 := fake(t, opts)
	s2, url2, c2 := fake(t, opts)
	a, b := outcomes(t, s1, url1, c1), outcomes(t, s2, url2, c2)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different outcomes:\n%v\n%v", a, b)
	}
	if s1.Stats() != s2.Stats() {
		t.Errorf("stats differ: %+v %+v", s1.Stats(), s2.Stats())
	}
	s1.Reset()
	if st := s1.Stats(); st != (Stats{}) || len(s1.Orders()) != 0 || len(s1.Events()) != 0 {
		t.Errorf("after Reset: %+v", st)
	}
	if again := outcomes(t, s1, url1, c1); !slices.Equal(a, again) {
		t.Errorf("after Reset, different outcomes")
	}
	opts.Seed = 8
	s3, url3, c3 := fake(t, opts)
	if slices.Equal(a, outcomes(t, s3, url3, c3)) {
		t.Errorf("another seed, same outcomes")
	}
}

func TestFakeButtonLatency(t *testing.T) {
	const d = 60 * time.Millisecond
	_, url, c := fake(t, Options{Latency: d})
	start := time.Now()
	r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody("o-1"))
	if el := time.Since(start); r.status != 200 || el < d {
		t.Errorf("status %d after %v, want 200 after at least %v", r.status, el, d)
	}
}

func TestFakeButtonLatencyClientGone(t *testing.T) {
	s, url, c := fake(t, Options{Latency: 10 * time.Second})
	c.Timeout = 50 * time.Millisecond
	start := time.Now()
	if r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody("o-1")); r.err == nil {
		t.Fatalf("answered: %d", r.status)
	}
	for s.Stats().Canceled == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the handler did not see the client go")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(s.Orders()) != 0 {
		t.Error("order recorded")
	}
}

func TestFakeButtonKeyNeverLeaks(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	opts := Options{APIKey: testKey, ErrorRate: 0.2, ThrottleRate: 0.2, DropAfterRate: 0.1, Seed: 5,
		Logf: func(format string, args ...any) {
			mu.Lock()
			fmt.Fprintf(&logs, format+"\n", args...)
			mu.Unlock()
		}}
	s, url, c := fake(t, opts)
	auths := []string{goodAuth, basic(testKey, "x"), basic(testKey+"x", ""), "Basic " + testKey, "Bearer " + testKey, ""}
	for i := range 60 {
		// post checks every body.
		post(t, c, "POST", url+OrderPath, auths[i%len(auths)], orderBody(fmt.Sprint("o-", i)))
		post(t, c, "POST", url+OrderPath, auths[i%len(auths)], "{bad")
	}
	sum := s.Summary()
	mu.Lock()
	defer mu.Unlock()
	for _, text := range []string{sum, logs.String()} {
		if strings.Contains(text, testKey) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(testKey+":"))) {
			t.Errorf("API key leaked:\n%s", text)
		}
	}
	if logs.Len() == 0 {
		t.Error("nothing logged")
	}
	for _, w := range []string{"fake Button: 120 requests", "orders created:", "401 unauthorized:", "injected 429:", "dropped after:"} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
}

func TestFakeButtonServeHTTPWithoutServer(t *testing.T) {
	s := New(Options{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", OrderPath, strings.NewReader(orderBody("o-1")))
	r.Header.Set("Authorization", basic(DefaultAPIKey, ""))
	s.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("default key: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), DefaultAPIKey) {
		t.Error("key in body")
	}
}

func TestFakeButtonStartClose(t *testing.T) {
	s := New(Options{APIKey: testKey, Latency: 20 * time.Millisecond})
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+$`).MatchString(url) || s.URL() != url {
		t.Fatalf("url %q", url)
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	if r := post(t, c, "POST", url+OrderPath, goodAuth, orderBody("o-1")); r.status != 200 {
		t.Fatalf("%+v", r)
	}

	// A request sleeping in a long latency does not hold Close up.
	s2 := New(Options{Latency: time.Minute})
	url2, err := s2.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Post(url2+EventsPath, "application/json", strings.NewReader(eventBody("x")))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for s2.Stats().Requests == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s2.Close()
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Close took %v", el)
	}
	<-errc

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	host := strings.TrimPrefix(url, "http://")
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still listening after Close", host)
	}
	if s.Stats().Created != 1 {
		t.Errorf("stats after Close: %+v", s.Stats())
	}
}

func TestFakeButtonValidate(t *testing.T) {
	bad := []Options{
		{ErrorRate: -0.1},
		{ThrottleRate: 1.5},
		{DropBeforeRate: math.NaN()},
		{ErrorRate: 0.6, DropAfterRate: 0.6},
		{RetryAfter: -time.Second},
		{Latency: -time.Millisecond},
	}
	for _, o := range bad {
		if o.Validate() == nil {
			t.Errorf("%+v accepted", o)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", o)
				}
			}()
			New(o)
		}()
	}
	var oe *OptionError
	if err := (Options{Latency: -time.Millisecond}).Validate(); !errors.As(err, &oe) || oe.Option != "latency" {
		t.Errorf("negative latency: %v, want an OptionError naming latency", err)
	}
	if err := (Options{ErrorRate: 0.25, ThrottleRate: 0.25, DropBeforeRate: 0.25, DropAfterRate: 0.25}).Validate(); err != nil {
		t.Errorf("rates adding up to 1: %v", err)
	}
}
