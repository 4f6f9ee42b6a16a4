package service_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium on one page, recording every console
// error, uncaught exception and CSP violation (Chromium logs those as
// errors of the browser log).
type browser struct {
	t       *testing.T
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	var chromium string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Skip("no chromium or chromium-browser on PATH: the browser test needs Debian's chromium")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the test may run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, m.String()+" ("+m.URL+")")
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// consoleErrors returns what the page reported so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	for _, m := range b.consoleErrors() {
		b.t.Logf("browser console: %s", m)
	}
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.t.Fatalf(format+"\npage:\n%s", append(args, text)...)
}

func (b *browser) do(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", name, err)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.fail("evaluate %s: %v", js, err)
	}
	return v
}

// wait polls the expression in the page until it is true.
func (b *browser) wait(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(12*time.Second))); err != nil {
		b.fail("waiting for %s: %v", what, err)
	}
}

// pick chooses an integration in the page's picker (value "" is All
// integrations) and waits until the stream is open again.
func (b *browser) pick(id string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const s = document.getElementById('integration'); s.value = %q; s.dispatchEvent(new Event('change')); return '' })()`, id))
	b.wait("the stream after picking "+id, fmt.Sprintf(`document.getElementById('integration').value === %q && document.getElementById('conn').dataset.state === 'open'`, id))
}

func rowJS(eventID, integrationID string) string {
	return fmt.Sprintf(`document.querySelector('tr.event-row[data-event-id=%q][data-integration-id=%q]')`, eventID, integrationID)
}

func (b *browser) cell(eventID, integrationID, col string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(%s?.querySelector('[data-col=%q]')?.textContent) ?? '(no row)'`, rowJS(eventID, integrationID), col))
}

// waitFinal waits until the row of the event for the integration has
// settled as final.
func (b *browser) waitFinal(eventID, integrationID, final string) {
	b.t.Helper()
	b.wait(fmt.Sprintf("%s for %s to be %s", eventID, integrationID, final),
		rowJS(eventID, integrationID)+fmt.Sprintf(`?.querySelector('[data-col="final"]')?.textContent === %q`, final))
}

// TestServeInBrowser drives the live page of a real service in headless
// Chromium: log in through the form, install Button through the API, pick
// it, post a signed order and watch its row end 200 and delivered; then a
// second Button with a wrong key, whose row for the next order ends 401,
// dead and highlighted. Any console error or CSP violation fails it.
func TestServeInBrowser(t *testing.T) {
	b := newBrowser(t)
	h := startWith(t, options{fastOwner: true})

	b.do("open the page", chromedp.Navigate(h.admin+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	b.do("log in",
		chromedp.SendKeys(chromedp.CSS("#email"), adminEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	b.wait("the live stream", `document.getElementById('conn').dataset.state === 'open'`)

	// Install Button with the integration page's seed body.
	tok := h.login()
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok,
		`{"name": "Button", "variant": "default", "config": {"application_id": "app-abc123", "api_key": "sk-test-123"}, "delivery_mode": "server_side"}`)
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	good := out["id"].(string)
	st, out, _ = h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	if st != 201 {
		t.Fatalf("source: %d %v", st, out)
	}
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)

	// The page lists the integrations when it starts: a reload (the
	// session survives it) shows the new one, and it can be picked.
	b.do("reload", chromedp.Reload())
	b.wait("Button in the picker", fmt.Sprintf(`[...document.getElementById('integration').options].some(o => o.value === %q)`, good))
	if got := b.eval(`document.getElementById('login').hidden + ''`); got != "true" {
		t.Fatalf("the reload asked to log in again")
	}
	b.pick(good)

	if st, out := h.post("/v1/events", pk, sk, order("web-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	b.waitFinal("m-web-1", good, "delivered")
	if got := b.cell("m-web-1", good, "status"); got != "200" {
		t.Errorf("status %q, want 200", got)
	}
	if got := b.eval(rowJS("m-web-1", good) + `.className`); got != "event-row" {
		t.Errorf("a delivered row's class is %q", got)
	}
	if got := b.cell("m-web-1", good, "integration"); got != "Button (button · default)" {
		t.Errorf("integration cell %q", got)
	}
	if got := b.cell("m-web-1", good, "decision"); !strings.Contains(got, "deliver") {
		t.Errorf("decision cell %q", got)
	}
	if got := b.cell("m-web-1", good, "request"); !strings.Contains(got, "/v1/order") || strings.Contains(got, apiKey) {
		t.Errorf("request cell %q: want the order request, redacted", got)
	}
	if _, ok := h.fake.Order("web-1"); !ok {
		t.Error("the page says delivered, the fake has no order web-1")
	}

	// A second Button with a wrong key: Button answers 401, never retried.
	st, out, _ = h.call("POST", "/v1/admin/integration-catalog/button/install", tok,
		`{"name": "Button (wrong key)", "variant": "default", "config": {"application_id": "app-abc123", "api_key": "sk-wrong-999"}, "delivery_mode": "server_side"}`)
	if st != 201 {
		t.Fatalf("second install: %d %v", st, out)
	}
	bad := out["id"].(string)
	b.do("reload", chromedp.Reload())
	b.wait("the second Button in the picker", fmt.Sprintf(`[...document.getElementById('integration').options].some(o => o.value === %q)`, bad))
	b.wait("the stream", `document.getElementById('conn').dataset.state === 'open'`)
	b.pick("") // All integrations

	if st, out := h.post("/v1/events", pk, sk, order("web-2"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	b.waitFinal("m-web-2", bad, "dead")
	if got := b.cell("m-web-2", bad, "status"); got != "401" {
		t.Errorf("status %q, want 401", got)
	}
	if got := b.eval(rowJS("m-web-2", bad) + `.className`); got != "event-row failed" {
		t.Errorf("a dead row's class is %q, want it failed", got)
	}
	if got := b.cell("m-web-2", bad, "attempts"); !strings.Contains(got, "401 Unauthorized") {
		t.Errorf("attempts cell %q lacks Button's message", got)
	}
	// The same order, through the right key, on its own row.
	b.waitFinal("m-web-2", good, "delivered")
	if got := b.cell("m-web-2", good, "status"); got != "200" {
		t.Errorf("the good Button's status %q, want 200", got)
	}

	for _, m := range b.consoleErrors() {
		t.Errorf("browser console: %s", m)
	}
}
