package delivery_test

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// bind binds Button 0.1.0's variant with apiKey, named as the CLI names it.
func bind(t testing.TB, variant, apiKey string) delivery.Binding {
	t.Helper()
	b, err := bindButton(variant, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bindButton(variant, apiKey string) (delivery.Binding, error) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		return delivery.Binding{}, err
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		return delivery.Binding{}, err
	}
	in, err := runtime.Bind(bp, variant, map[string]any{"application_id": "app-abc123", "api_key": apiKey})
	if err != nil {
		return delivery.Binding{}, err
	}
	return delivery.Binding{Name: "button@0.1.0/" + variant, Ref: "button", Integration: in}, nil
}

// fake serves a fake Button for the test.
func fake(t testing.TB, opts fakebutton.Options) (*fakebutton.Server, *url.URL) {
	t.Helper()
	srv := fakebutton.New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	u, _ := url.Parse(hs.URL)
	return srv, u
}

// fastOptions retries within milliseconds, against vendor.
func fastOptions(vendor *url.URL) delivery.Options {
	return delivery.Options{
		Sender: send.Options{VendorURL: vendor},
		Policy: send.Policy{MaxAttempts: 20, Base: 2 * time.Millisecond, Cap: 20 * time.Millisecond},
		Poll:   5 * time.Millisecond,
	}
}

// order and cart are Button events, distinct by i.
func order(i int) string {
	return fmt.Sprintf(`{"type":"track","event":"Order Completed","message_id":"msg-%d","user_id":"u-%d","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"click_ids":{"btn_ref":"srctok-%016x"}},"properties":{"order_id":"ord-%d","subtotal":"%d.99","currency":"USD","products":[{"product_id":"p-1","price":"%d.99","quantity":1}]}}`, i, i, i, i, i%500, i%500)
}

func cart(i int) string {
	return fmt.Sprintf(`{"type":"track","event":"Product Added","message_id":"cart-%d","user_id":"u-%d","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"ip":"203.0.113.9"},"properties":{"product_id":"p-%d","price":12.5,"currency":"EUR","quantity":1}}`, i, i, i)
}

// events is n Button events as NDJSON: two thirds orders, one third
// add-to-carts.
func events(n int) (input []byte, orders, carts int) {
	var b bytes.Buffer
	for i := range n {
		if i%3 == 2 {
			b.WriteString(cart(i) + "\n")
			carts++
			continue
		}
		b.WriteString(order(i) + "\n")
		orders++
	}
	return b.Bytes(), orders, carts
}

// eventsFile writes events(n) to a file.
func eventsFile(t testing.TB, n int) (path string, orders, carts int) {
	input, orders, carts := events(n)
	path = filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, input, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, orders, carts
}
