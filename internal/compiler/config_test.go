package compiler

import (
	"math"
	"testing"
)

// TestURLConfigHosts: the url config type refuses a host that is no host
// name (https://*.example.com/ put a wildcard in the integration's host
// allow-list), a port outside 1 to
// 65535 and an IPv4 address written in a form other than A.B.C.D, which
// resolvers following inet_aton (and browsers) read as the address it
// hides: 2130706433 and 0x7f.1 are 127.0.0.1, and 127.0.0.1. (a trailing
// dot) is not an IP literal to netip, so the private-address check passed
// them all. Names, IDN and public literals are kept.
func TestURLConfigHosts(t *testing.T) {
	f := &ConfigField{Key: "url", Type: ConfigURL}
	for u, ok := range map[string]bool{
		"https://hooks.example.com/e":        true,
		"HTTPS://Hooks.Example.COM./e?x=1":   true,
		"https://xn--e1afmkfd.xn--p1ai/":     true,
		"https://пример.рф/":                 true,
		"https://203.0.113.9:8443/":          true,
		"https://[2606:4700::1111]/":         true,
		"https://h.example.com:1/":           true,
		"https://h.example.com:65535/":       true,
		"https://1.example.com/":             true,
		"https://0x.example/":                true,
		"https://h.example.com:0/":           false,
		"https://h.example.com:65536/":       false,
		"https://h.example.com:99999/":       false,
		"https://2130706433/":                false,
		"https://0x7f.1/":                    false,
		"https://0x7F000001/":                false,
		"https://127.1/":                     false,
		"https://0177.0.0.1/":                false,
		"https://127.0.0.1./":                false,
		"https://10.0.0.1/":                  false,
		"https://134744072/":                 false,
		"https://hooks.example.com.123/":     false,
		"https://[::1%25lo]/":                false,
		"https://[::ffff:7f00:1]:443/events": false,
		"https://*.example.com/":             false,
		"https://*/":                         false,
		"https://ex'ample.com/":              false,
		"https://a_b.example.com/":           true,
	} {
		_, err := CheckConfigValue(f, u)
		if (err == nil) != ok {
			t.Errorf("%s: err %v, want accepted %t", u, err, ok)
		}
	}
}

// TestNumberConfigNotNaN: NaN and infinities (YAML's .nan and .inf in a
// config file, or a Go caller's float) are not numbers a config may hold:
// NaN passed every min and max, as every comparison with it is false.
func TestNumberConfigNotNaN(t *testing.T) {
	lo, hi := 1.0, 10.0
	f := &ConfigField{Key: "ratio", Type: ConfigNumber, Min: &lo, Max: &hi}
	for _, v := range []any{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := CheckConfigValue(f, v); err == nil {
			t.Errorf("%v accepted as %v", v, got)
		}
	}
	if got, err := CheckConfigValue(f, 2.5); err != nil || got != 2.5 {
		t.Errorf("2.5: %v %v", got, err)
	}
}
