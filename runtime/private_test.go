package runtime_test

import (
	"errors"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// TestAllowPrivateAddressesAcceptsPrivateURL: vendors.md refuses a private,
// loopback or link-local webhook address "unless the operator allows it".
// A url written as such an IP literal is invalid_config by default, and
// accepted when the operator allows private receivers
// (--allow-private-addresses sets WithAllowPrivateAddresses); it was
// refused even then, so an allowed internal receiver could only be named.
func TestAllowPrivateAddressesAcceptsPrivateURL(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("webhook@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	for _, u := range []string{"https://10.1.2.3/hook", "https://127.0.0.1:8443/hook", "https://[fe80::1]/hook", "https://169.254.169.254/x"} {
		cfg := map[string]any{"url": u}
		var ce *runtime.ConfigError
		if _, err := runtime.Bind(bp, "", cfg); !errors.As(err, &ce) {
			t.Errorf("%s by default: %v, want a ConfigError", u, err)
		}
		if _, err := runtime.Bind(bp, "", cfg, runtime.WithAllowPrivateAddresses(false)); !errors.As(err, &ce) {
			t.Errorf("%s not allowed: %v, want a ConfigError", u, err)
		}
		in, err := runtime.Bind(bp, "", cfg, runtime.WithAllowPrivateAddresses(true))
		if err != nil {
			t.Fatalf("%s allowed: %v", u, err)
		}
		if res := in.Evaluate([]byte(`{"type":"page"}`)); res.Outcome != runtime.Deliver || len(res.Requests) != 1 || res.Requests[0].URL != u {
			t.Errorf("%s allowed: %v %s", u, res.Outcome, res.Message)
		}
	}
	// Allowing private receivers does not relax the other rules.
	var ce *runtime.ConfigError
	if _, err := runtime.Bind(bp, "", map[string]any{"url": "http://10.1.2.3/hook"}, runtime.WithAllowPrivateAddresses(true)); !errors.As(err, &ce) {
		t.Errorf("http with private allowed: %v, want a ConfigError", err)
	}
}
