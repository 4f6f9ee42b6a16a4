package live

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// fakeAdmin is the least of the admin API that the page needs: login,
// refresh, a paged integrations list and the live stream, with short-lived
// tokens so that the page has to refresh while the test runs.
type fakeAdmin struct {
	hub       atomic.Pointer[Hub] // swapped to cut every live connection
	ttl       time.Duration
	mu        sync.Mutex
	n         int
	access    map[string]time.Time // access token → expiry
	refresh   string               // the one valid refresh token
	refreshes atomic.Int32
	queries   chan url.Values // the query of each live connection, token left out
}

const (
	fakeEmail    = "owner@example.com"
	fakePassword = "correct horse battery"
	hostileName  = `<img src=x onerror="window.__pwned=1">Evil & co`
)

func newFakeAdmin(ttl time.Duration) *fakeAdmin {
	f := &fakeAdmin{ttl: ttl, access: map[string]time.Time{}, queries: make(chan url.Values, 100)}
	f.hub.Store(quietHub(Options{Buffer: 1024})) // room for the test's bursts
	return f
}

func (f *fakeAdmin) issue(w http.ResponseWriter) {
	f.mu.Lock()
	f.n++
	access, refresh := fmt.Sprintf("acc-%d", f.n), fmt.Sprintf("ref-%d", f.n)
	f.access[access] = time.Now().Add(f.ttl)
	f.refresh = refresh
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": int(f.ttl / time.Second),
	})
}

// check says whether token is a live access token, as an error the page
// understands.
func (f *fakeAdmin) check(token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.access[token]
	switch {
	case !ok:
		return codedErr{"INVALID_TOKEN", "unknown access token"}
	case time.Now().After(exp):
		return codedErr{"EXPIRED_TOKEN", "the access token has expired"}
	}
	return nil
}

func (f *fakeAdmin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", Page())
	mux.HandleFunc("POST /v1/admin/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Email, Password string }
		if json.NewDecoder(r.Body).Decode(&body) != nil || body.Email != fakeEmail || body.Password != fakePassword {
			writeError(w, http.StatusUnauthorized, "INVALID_CREDENTIALS", "wrong email or password")
			return
		}
		f.issue(w)
	})
	mux.HandleFunc("POST /v1/admin/auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		ok := body.RefreshToken != "" && body.RefreshToken == f.refresh
		f.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "INVALID_TOKEN", "refresh token reused or unknown")
			return
		}
		f.refreshes.Add(1)
		f.issue(w)
	})
	mux.HandleFunc("GET /v1/admin/integrations", func(w http.ResponseWriter, r *http.Request) {
		if err := f.check(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err != nil {
			writeError(w, http.StatusUnauthorized, err.(codedErr).code, err.Error())
			return
		}
		// Two pages, so that the page follows next_cursor.
		page := map[string]any{"data": []map[string]any{
			{"id": "int_button", "vendor": "button", "name": "Button EU", "variant": "orders", "enabled": true},
		}, "next_cursor": "p2", "has_more": true}
		if r.URL.Query().Get("cursor") == "p2" {
			page = map[string]any{"data": []map[string]any{
				{"id": "int_evil", "vendor": "x", "name": hostileName, "variant": "", "enabled": false},
			}, "next_cursor": nil, "has_more": false}
		}
		json.NewEncoder(w).Encode(page)
	})
	mux.HandleFunc("/v1/admin/live", func(w http.ResponseWriter, r *http.Request) {
		f.hub.Load().Handler(func(r *http.Request) error {
			q := r.URL.Query()
			token := q.Get("access_token")
			if err := f.check(token); err != nil {
				return err
			}
			q.Del("access_token")
			f.queries <- q
			return nil
		}).ServeHTTP(w, r)
	})
	return mux
}

func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium or chromium-browser on PATH: the browser test needs Debian's chromium")
	return ""
}

// TestPageInBrowser drives the real page in headless Chromium against the
// fake admin API: log in, watch events arrive, see successes and failures,
// filter by integration, survive a dropped connection and token refreshes,
// and never run event data as HTML.
func TestPageInBrowser(t *testing.T) {
	chromium := findChromium(t)
	fake := newFakeAdmin(4 * time.Second)
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()
	defer func() { fake.hub.Load().Close() }()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the test may run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	// Every console error, uncaught exception and CSP violation fails the test.
	var consoleMu sync.Mutex
	var console []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Chromium logs the 401 of the refused login: expected.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !strings.Contains(m.Text, "status of 401") {
				consoleMu.Lock()
				console = append(console, m.String())
				consoleMu.Unlock()
			}
		}
	}()

	var eval func(js string) string
	logConsole := func() {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, m := range console {
			t.Logf("browser console: %s", m)
		}
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			logConsole()
			t.Fatalf("%s: %v\npage: %s", name, err, eval(`document.body.innerText`))
		}
	}
	eval = func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// waitJS waits until the expression is true.
	waitJS := func(what, js string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			logConsole()
			t.Fatalf("waiting for %s: %v\npage: %s", what, err, eval(`document.body.innerText`))
		}
	}
	waitConnected := func(filter string) {
		t.Helper()
		select {
		case q := <-fake.queries:
			if got := q.Get("integration_id"); got != filter {
				t.Fatalf("the page connected with integration_id %q, want %q", got, filter)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the page did not connect to the live stream")
		}
		waitJS("the live indicator", `document.getElementById('conn').dataset.state === 'open'`)
		deadline := time.Now().Add(5 * time.Second)
		for fake.hub.Load().Subscribers() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("%d subscribers, want 1", fake.hub.Load().Subscribers())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	row := func(eventID, integrationID string) string {
		return fmt.Sprintf(`document.querySelector('tr.event-row[data-event-id=%q][data-integration-id=%q]')`, eventID, integrationID)
	}
	cell := func(eventID, integrationID, col string) string {
		return eval(fmt.Sprintf(`(%s?.querySelector('[data-col=%q]')?.textContent) ?? '(no row)'`, row(eventID, integrationID), col))
	}
	publish := func(ms ...Message) {
		for _, m := range ms {
			if m.At.IsZero() {
				m.At = time.Now().UTC()
			}
			fake.hub.Load().Publish(m)
		}
	}

	// A wrong password says so; the right one opens the live view.
	step("open the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	step("log in with a wrong password",
		chromedp.SendKeys(chromedp.CSS("#email"), fakeEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), "wrong"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := eval(`document.getElementById('login-error').textContent`); got != "Wrong email or password." {
		t.Errorf("login error %q", got)
	}
	eval(`document.getElementById('password').value = ''`) // chromedp.Clear resets the attribute, not what was typed
	step("log in",
		chromedp.SendKeys(chromedp.CSS("#password"), fakePassword),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	waitConnected("")

	// The picker lists both pages of integrations; names are text.
	waitJS("the integrations", `document.getElementById('integration').options.length === 3`)
	if got := eval(`[...document.getElementById('integration').options].map(o => o.value + '=' + o.text).join('|')`); got != "=All integrations|int_button=Button EU (button · orders)|int_evil="+hostileName+" (x) [disabled]" {
		t.Errorf("picker: %s", got)
	}

	// A delivered event: one row that ends with 200 and delivered.
	publish(
		Message{Type: TypeReceived, EventID: "evt_ok", SourceID: "src_1", EventName: "Order Completed"},
		Message{Type: TypeDecision, EventID: "evt_ok", IntegrationID: "int_button", EventName: "Order Completed", Outcome: "deliver", Warnings: []string{"currency defaulted to USD"}},
		Message{Type: TypeRequest, EventID: "evt_ok", IntegrationID: "int_button", Item: "it_1", Method: "POST", URL: "https://api.usebutton.com/v1/order", Request: "POST /v1/order\nAuthorization: ***\n\n{\"order_id\":\"o-1\"}"},
		Message{Type: TypeAttempt, EventID: "evt_ok", IntegrationID: "int_button", Item: "it_1", Attempt: 1, Outcome: "retry", Status: 503, DurationMS: 12, Message: "Service Unavailable"},
	)
	waitJS("the 503 attempt", row("evt_ok", "int_button")+`?.querySelector('[data-col="status"]')?.textContent === '503'`)
	if got := eval(row("evt_ok", "int_button") + `.className`); got != "event-row failed" {
		t.Errorf("after a 503 the row's class is %q, want it failed", got)
	}
	publish(
		Message{Type: TypeAttempt, EventID: "evt_ok", IntegrationID: "int_button", Item: "it_1", Attempt: 2, Outcome: "delivered", Status: 200, DurationMS: 35, BodyExcerpt: `{"object":{"status":"pending"}}`},
		Message{Type: TypeFinal, EventID: "evt_ok", IntegrationID: "int_button", Item: "it_1", Outcome: "delivered"},
	)
	waitJS("the delivered row", row("evt_ok", "int_button")+`?.querySelector('[data-col="final"]')?.textContent === 'delivered'`)
	if got := cell("evt_ok", "int_button", "status"); got != "200" {
		t.Errorf("status %q, want 200", got)
	}
	if got := eval(row("evt_ok", "int_button") + `.className`); got != "event-row" {
		t.Errorf("a delivered row's class is %q", got)
	}
	if got := cell("evt_ok", "int_button", "decision"); !strings.Contains(got, "deliver") || !strings.Contains(got, "currency defaulted to USD") {
		t.Errorf("decision cell %q", got)
	}
	if got := cell("evt_ok", "int_button", "event"); !strings.Contains(got, "Order Completed") {
		t.Errorf("event cell %q", got)
	}
	if got := cell("evt_ok", "int_button", "integration"); got != "Button EU (button · orders)" {
		t.Errorf("integration cell %q", got)
	}
	if got := cell("evt_ok", "int_button", "request"); !strings.Contains(got, "POST https://api.usebutton.com/v1/order") || !strings.Contains(got, `"order_id":"o-1"`) {
		t.Errorf("request cell %q", got)
	}
	if got := eval(`String(document.querySelectorAll('tr.event-row').length)`); got != "1" {
		t.Errorf("%s rows after one event, want 1 (the received row is taken over)", got)
	}

	// A second integration on the same event gets its own row, on top.
	publish(Message{Type: TypeDecision, EventID: "evt_ok", IntegrationID: "int_evil", Outcome: "skip", Reason: "not an order"})
	waitJS("the second row", row("evt_ok", "int_evil")+` !== null`)
	if got := eval(`document.querySelector('tr.event-row').dataset.integrationId`); got != "int_evil" {
		t.Errorf("top row is %q, want the newest", got)
	}

	// A failure, with hostile event data: shown as text, highlighted.
	publish(
		Message{Type: TypeReceived, EventID: "evt_bad", EventName: hostileName},
		Message{Type: TypeDecision, EventID: "evt_bad", IntegrationID: "int_button", Outcome: "deliver"},
		Message{Type: TypeAttempt, EventID: "evt_bad", IntegrationID: "int_button", Attempt: 1, Outcome: "failed", Status: 401, DurationMS: 9, Message: "Unauthorized: invalid API key", BodyExcerpt: `<script>window.__pwned=2</script>`},
		Message{Type: TypeFinal, EventID: "evt_bad", IntegrationID: "int_button", Outcome: "dead", Message: "401 after 1 attempt"},
		Message{Type: TypeDecision, EventID: "evt_rej", IntegrationID: "int_button", Outcome: "reject", Reason: "missing_required_field", Fields: []string{"properties.order_id"}, Message: "order_id is required"},
	)
	waitJS("the dead row", row("evt_bad", "int_button")+`?.querySelector('[data-col="final"]')?.textContent === 'dead'`)
	waitJS("the rejected row", row("evt_rej", "int_button")+` !== null`)
	if got := cell("evt_bad", "int_button", "status"); got != "401" {
		t.Errorf("status %q, want 401", got)
	}
	for _, id := range []string{"evt_bad", "evt_rej"} {
		if got := eval(row(id, "int_button") + `.className`); got != "event-row failed" {
			t.Errorf("%s: class %q, want failed", id, got)
		}
	}
	if got := cell("evt_bad", "int_button", "attempts"); !strings.Contains(got, "Unauthorized: invalid API key") || !strings.Contains(got, "<script>window.__pwned=2</script>") {
		t.Errorf("attempts cell %q lacks the message or the excerpt as text", got)
	}
	if got := cell("evt_bad", "int_button", "event"); !strings.Contains(got, hostileName) {
		t.Errorf("event cell %q, want the hostile name as text", got)
	}
	if got := cell("evt_rej", "int_button", "decision"); !strings.Contains(got, "reject") || !strings.Contains(got, "properties.order_id") || !strings.Contains(got, "order_id is required") {
		t.Errorf("reject decision cell %q", got)
	}
	if got := eval(`String(window.__pwned) + ' ' + document.querySelectorAll('#rows img, #rows script, select img').length`); got != "undefined 0" {
		t.Errorf("event data ran as HTML: %s", got)
	}

	if path := os.Getenv("LIVE_PAGE_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(path, png, 0o644)
		}
		if err != nil {
			t.Logf("screenshot: %v", err)
		}
	}

	// Picking an integration reconnects with the filter and starts afresh.
	eval(`(() => { const s = document.getElementById('integration'); s.value = 'int_button'; s.dispatchEvent(new Event('change')); return '' })()`)
	waitConnected("int_button")
	if got := eval(`String(document.querySelectorAll('tr.event-row').length)`); got != "0" {
		t.Errorf("%s rows after a new filter, want none", got)
	}
	publish(
		Message{Type: TypeDecision, EventID: "evt_other", IntegrationID: "int_evil", Outcome: "deliver"},
		Message{Type: TypeDecision, EventID: "evt_mine", IntegrationID: "int_button", Outcome: "deliver"},
	)
	waitJS("the filtered row", row("evt_mine", "int_button")+` !== null`)
	if got := eval(`String(document.querySelectorAll('tr.event-row').length)`); got != "1" {
		t.Errorf("%s rows, want only int_button's", got)
	}

	// A reload keeps the session and the filter, without asking to log in.
	step("reload", chromedp.Reload())
	waitConnected("int_button")
	if got := eval(`document.getElementById('login').hidden + ' ' + document.getElementById('integration').value`); got != "true int_button" {
		t.Errorf("after a reload: login hidden, filter = %s", got)
	}

	// The server drops the stream (as at a restart): the page reconnects,
	// with a token it has refreshed meanwhile.
	old := fake.hub.Load()
	fake.hub.Store(quietHub(Options{Buffer: 1024}))
	old.Close()
	waitConnected("int_button")
	if fake.refreshes.Load() == 0 {
		time.Sleep(3 * time.Second) // tokens live 4 s: the page refreshes within 2 s
	}
	if fake.refreshes.Load() == 0 {
		t.Error("the page never refreshed its token")
	}
	publish(
		Message{Type: TypeDecision, EventID: "evt_after", IntegrationID: "int_button", Outcome: "deliver"},
		Message{Type: TypeAttempt, EventID: "evt_after", IntegrationID: "int_button", Attempt: 1, Outcome: "delivered", Status: 200, DurationMS: 5},
		Message{Type: TypeFinal, EventID: "evt_after", IntegrationID: "int_button", Outcome: "delivered"},
	)
	waitJS("the row after the reconnect", row("evt_after", "int_button")+`?.querySelector('[data-col="final"]')?.textContent === 'delivered'`)
	if got := cell("evt_after", "int_button", "status"); got != "200" {
		t.Errorf("status after the reconnect %q", got)
	}

	// A slow page is told what it lost.
	publish(Message{Type: TypeDropped, Message: "3 messages dropped: the page was too slow"})
	waitJS("the dropped notice", `document.getElementById('notice').textContent === '3 messages dropped: the page was too slow'`)

	// At most 500 rows.
	for i := range 520 {
		publish(Message{Type: TypeDecision, EventID: fmt.Sprint("bulk_", i), IntegrationID: "int_button", Outcome: "deliver"})
	}
	waitJS("the last bulk row", row("bulk_519", "int_button")+` !== null`)
	if got := eval(`String(document.querySelectorAll('tr.event-row').length)`); got != "500" {
		t.Errorf("%s rows, want at most 500", got)
	}

	// Log out: back to the form, the stream closed.
	step("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	deadline := time.Now().Add(5 * time.Second)
	for fake.hub.Load().Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream stayed open after logging out")
		}
		time.Sleep(10 * time.Millisecond)
	}

	consoleMu.Lock()
	defer consoleMu.Unlock()
	for _, m := range console {
		t.Errorf("browser console: %s", m)
	}
}
