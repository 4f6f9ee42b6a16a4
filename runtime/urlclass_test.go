package runtime_test

// The class of issue #11's findings 2 and 11: whatever event data fills a
// URL placeholder (host label, port, path segment, query), Evaluate never
// returns a request whose host is outside the bound integration's
// allow-list, nor one whose path holds a dot segment made of event data.

import (
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// urlClassSrc reads event data into every position of a URL, in several
// shapes: a placeholder as a whole segment, beside literal dots, twice in
// one segment, as the first segment, as a query key, in the port.
const urlClassSrc = `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  api_key: {type: secret, required: true}
hosts: [api.example.com, "*.api.example.com", "*.eu.example.com"]
values:
  h: {from: properties.h, type: string, pattern: '[a-zA-Z0-9-]+'}
  port: {from: properties.port, type: string, pattern: '[0-9]+'}
  p: {from: properties.p}
  q: {from: properties.q}
requests:
  host:
    method: POST
    url: https://{values.h}.api.example.com/v1/{values.p}?a={values.q}
    auth: {type: basic, username: "{config.api_key}", password: ""}
    body:
      a: {from: properties.a}
  path:
    method: POST
    url: https://api.example.com/v1/{values.p}/.{values.p}/{values.p}{values.p}/x{values.p}?{values.q}={values.p}&b=.{values.q}
    auth: {type: bearer, token: "{config.api_key}"}
    body:
      a: {from: properties.a}
  first:
    method: GET
    url: https://api.example.com/{values.p}
  port:
    method: POST
    url: https://{values.h}.eu.example.com:{values.port}/{values.p}
    auth: {type: query, name: key, value: "{config.api_key}"}
    body:
      a: {from: properties.a}
  bare:
    method: GET
    url: https://{values.h}.api.example.com
events:
  Host: {vendor_event: host, request: host}
  Path: {vendor_event: path, request: path}
  First: {vendor_event: first, request: first}
  Port: {vendor_event: port, request: port}
  Bare: {vendor_event: bare, request: bare}
`

var urlClassEvents = []string{"Host", "Path", "First", "Port", "Bare"}

// urlHostile are the pieces random placeholder text is made of.
var urlHostile = []string{
	"#", "/", "@", "?", `\`, "%", " ", "..", ".", ":", ":443", "%2e", "%2E", "%2f", "%5c", "%00", "%",
	"evil.example", "evil.example.", "a", "b-c", "-", "xn--bcher-kva", "bücher", "\u0430pi", "api\u3002evil",
	"\uff0e", "\u2024", "\u00a0", "\u200b", "\r\n", "\t", "\x00", "[::1]", "127.0.0.1", "user:pw@", "https://evil.example/",
	"0", "80", "65536", "%252e", ".%2e", "%2e.", "&", "=", ";", ",", "+", "$", "!", "'", "(", ")", "*", "~", "_",
	"\U0001F600", "\ufffd", strings.Repeat("a", 63), strings.Repeat("b", 64),
}

func urlClassText(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return ""
	case 1: // arbitrary runes
		var b strings.Builder
		for range r.IntN(6) + 1 {
			b.WriteRune(rune(r.IntN(0x3000)))
		}
		return b.String()
	}
	var b strings.Builder
	for range r.IntN(4) + 1 {
		b.WriteString(urlHostile[r.IntN(len(urlHostile))])
	}
	return b.String()
}

// urlClassEvent is a track event of the given name whose properties hold
// the placeholder texts.
func urlClassEvent(name, h, port, p, q string) []byte {
	props, _ := json.Marshal(map[string]any{"h": h, "port": port, "p": p, "q": q, "a": 1})
	return []byte(`{"type":"track","event":"` + name + `","properties":` + string(props) + `}`)
}

// urlClassCheck is the class invariant for one result.
func urlClassCheck(t *testing.T, in *runtime.Integration, ev []byte, res runtime.Result) {
	t.Helper()
	if res.Outcome != runtime.Deliver {
		if res.Outcome != runtime.Reject || (res.Reason != runtime.ReasonInvalidField && res.Reason != runtime.ReasonMissingRequiredField) || len(res.Fields) == 0 {
			t.Errorf("%s: %s %s %v %s", ev, res.Outcome, res.Reason, res.Fields, res.Message)
		}
		return
	}
	for _, q := range res.Requests {
		u, err := url.Parse(q.URL)
		if err != nil {
			t.Errorf("%s: delivered a URL that does not parse: %q: %v", ev, in.Redacted(q).URL, err)
			continue
		}
		if u.Scheme != "https" || !in.HostAllowed(u.Hostname()) {
			t.Errorf("%s: delivered to %s://%s (URL %q), outside %v", ev, u.Scheme, u.Hostname(), in.Redacted(q).URL, in.Hosts())
		}
		if port := u.Port(); port != "" && strings.Trim(port, "0123456789") != "" {
			t.Errorf("%s: port %q", ev, port)
		}
		if u.User != nil || u.Fragment != "" || u.Opaque != "" {
			t.Errorf("%s: URL %q has user info, a fragment or is opaque", ev, in.Redacted(q).URL)
		}
		// No dot segment, even for a server that decodes escapes and reads
		// a backslash as a slash.
		dec, err := url.PathUnescape(u.EscapedPath())
		if err != nil {
			dec = u.EscapedPath()
		}
		for _, seg := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
			if seg == "." || seg == ".." {
				t.Errorf("%s: delivered a dot segment: %q", ev, in.Redacted(q).URL)
			}
		}
	}
}

// urlClassBind compiles urlClassSrc; strip removes the value patterns
// (what the compiler asks a host value to declare), so that raw event
// data reaches the host placeholder and only the runtime's checks remain.
func urlClassBind(tb testing.TB, strip bool) *runtime.Integration {
	tb.Helper()
	bp, ds := engine.Compile("demo.yaml", []byte(urlClassSrc))
	if bp == nil {
		tb.Fatal(ds)
	}
	if strip {
		stripPatterns(bp)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"api_key": "sk-class-key"})
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// TestURLNeverLeavesAllowList is the property: random hostile text in
// every placeholder position, against the blueprint as compiled and with
// its host declarations removed.
func TestURLNeverLeavesAllowList(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for _, strip := range []bool{false, true} {
		in := urlClassBind(t, strip)
		r := rand.New(rand.NewPCG(11, uint64(len(urlClassSrc))))
		delivered := map[string]int{}
		for range n {
			name := urlClassEvents[r.IntN(len(urlClassEvents))]
			h, port, p, q := urlClassText(r), urlClassText(r), urlClassText(r), urlClassText(r)
			if r.IntN(3) == 0 {
				h = "eu" // also events that reach the path and query checks
			}
			if r.IntN(3) == 0 {
				port = "8443"
			}
			ev := urlClassEvent(name, h, port, p, q)
			res := in.Evaluate(ev)
			urlClassCheck(t, in, ev, res)
			if res.Outcome == runtime.Deliver {
				delivered[name]++
			}
			if t.Failed() {
				return
			}
		}
		// The property must not hold vacuously: every shape delivers.
		for _, name := range urlClassEvents {
			if delivered[name] == 0 {
				t.Errorf("strip=%v: no %s event was delivered", strip, name)
			}
		}
	}
}

// FuzzURLPlaceholders is the same property under the fuzzer.
//
//	go test ./runtime -run '^$' -fuzz FuzzURLPlaceholders -fuzztime 60s
func FuzzURLPlaceholders(f *testing.F) {
	for _, s := range urlHostile {
		f.Add(uint8(0), s, "8443", s, s)
		f.Add(uint8(1), "eu", "1", s, s)
	}
	f.Add(uint8(2), "eu", "443", "..", "..")
	f.Add(uint8(3), "evil.example#", "1:2", "a/../b", "?#")
	ins := [2]*runtime.Integration{urlClassBind(f, false), urlClassBind(f, true)}
	f.Fuzz(func(t *testing.T, which uint8, h, port, p, q string) {
		name := urlClassEvents[int(which)%len(urlClassEvents)]
		ev := urlClassEvent(name, h, port, p, q)
		for _, in := range ins {
			urlClassCheck(t, in, ev, in.Evaluate(ev))
		}
	})
}
