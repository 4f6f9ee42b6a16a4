package send_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// FuzzNoSecretLeaks closes the class of issue #11: no output path ever
// shows a config secret, in any encoding the redaction promises to scrub.
//
// Per input: a secret of random length and characters (printable, 4 to 64
// characters), a Basic user name of random length (so that the secret
// sits at every offset of the base64 credential), an auth type (basic,
// bearer, header with a secret header, query), and a vendor that echoes the
// request's method, URL, headers and body in its error answer, possibly
// cut at a random length, after 0..20 "x..." cut marks, as a JSON error
// message, as raw text, as JSON written in \u escapes, or as JSON cut
// short (then not JSON); or that drops the connection.
//
// Output paths: Result.String(), Result.MarshalJSON(), Result.LogValue()
// through slog text and JSON handlers at every level, Integration.Redacted
// for every request, Result.Message (of an event carrying the secret in
// every encoding, and cut in values after 0..20 cut values), Verdict.Message
// from Classify, the sender's Attempt.Message and error texts (the URL of
// a *url.Error included; an echoing vendor, a dropped connection and a URL
// that does not parse), and the dead letter (LastError, URL, MessageID of
// an outbox.Memory item after a Worker run) with the worker's and sender's
// log lines.
//
// Forbidden forms: the secret as written, url.QueryEscape, url.PathEscape,
// in a JSON string (json.Marshal's HTML escaping or not), written all in
// \u escapes, its base64 at each of the 3 alignments in both alphabets
// (the characters that depend on the secret alone), and the whole Basic
// credential. A form counts only where it shows more often than in the
// same run with another secret of the same length (a control), so that a
// secret that happens to be a word of the output ("status", "deliver") is
// not taken for a leak.
//
//	go test ./runtime/send -run '^$' -fuzz FuzzNoSecretLeaks -fuzztime 60s
func FuzzNoSecretLeaks(f *testing.F) {
	for _, s := range []struct {
		secret, user    string
		auth            uint8
		cut             uint16
		marks, vendorAs uint8
	}{
		{"sk-test-123", "app-abc", 0, 0, 0, 0},   // the Basic credential (secret at offset 8: alignment 2)
		{"sk-test-123", "app-abc", 0, 212, 9, 1}, // ... echoed, cut inside it after 9 cut marks
		{"sk-test-123", "app-", 0, 77, 8, 2},
		{"sk-test-123", "a", 3, 0, 0, 0},       // query auth: the key in the URL
		{"sk-test-123", "a", 3, 0, 0, 4},       // ... and a dropped connection
		{"sk-live-abc", "app-1", 1, 30, 20, 3}, // bearer
		{"sk-live-abc", "ab", 2, 5, 12, 1},     // header auth, a secret header
		{`p@ss w0rd/+=&"<>\`, "user name", 0, 0, 3, 0},
		{`p@ss w0rd/+=&"<>\`, "u", 3, 100, 0, 2},
		{"clé-secrète-ü", "ü", 0, 0, 0, 2},
		{"abcd", "x", 0, 0, 0, 0},
		{strings.Repeat("K9", 32), "app-abcdefgh", 0, 300, 20, 1},
		{"*bcd", "ab", 1, 0, 2, 1}, // a secret around the mask
		{"x**y**z", "abc", 0, 9, 0, 0},
	} {
		f.Add(s.secret, s.user, s.auth, s.cut, s.marks, s.vendorAs)
	}
	bp := leakBlueprint(f)
	srv := httptest.NewServer(http.HandlerFunc(echoVendor))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, secretIn, userIn string, auth uint8, cut uint16, marks, vendorAs uint8) {
		secret, user := leakText(secretIn, 4, 64), leakText(userIn, 1, 40)
		if secret == "" || user == "" || strings.Contains(user, ":") {
			t.Skip()
		}
		p := leakParams{auth: auth % 4, cut: int(cut), marks: int(marks % 21), vendorAs: vendorAs % 5}
		got := leakOutputs(t, bp, srv.URL, secret, user, p)
		control := leakOutputs(t, bp, srv.URL, leakControl(secret), user, p)
		var leaks []string
		for _, form := range leakForms(secret, user) {
			for _, path := range sortedKeys(got) {
				if n, c := strings.Count(got[path], form), strings.Count(control[path], form); n > c {
					leaks = append(leaks, fmt.Sprintf("%s shows %q (%d times, %d with another secret):\n%s", path, form, n, c, got[path]))
				}
			}
		}
		if len(leaks) > 0 {
			t.Fatalf("secret %q, user %q, %+v: %d leaks; first:\n%s", secret, user, p, len(leaks), leaks[0])
		}
	})
}

type leakParams struct {
	auth     uint8 // 0 basic, 1 bearer, 2 header (and a secret header), 3 query
	cut      int   // where the vendor cuts its echo (0: not cut)
	marks    int   // "x..." before the echo, cut values before the secret
	vendorAs uint8 // 0 JSON message, 1 raw text, 2 JSON in \u escapes, 3 JSON cut short, 4 drop the connection
}

var leakKinds = []string{"Basic", "Bearer", "Header", "Query"}

// leakBlueprint has one request per auth type; each sends property a and
// checks number n and list items[].p, whose bad values are cut to 40
// bytes in messages.
func leakBlueprint(tb testing.TB) *engine.Blueprint {
	tb.Helper()
	body := `    body:
      a: {from: properties.a}
      n: {from: properties.n, type: number}
      items:
        from: properties.items
        type: array
        items:
          p: {from: p, type: number}
`
	src := `key: leak
version: 1.0.0
name: Leak
category: other
status: alpha
hosts: [api.example.com]
config:
  application_id: {type: string, required: true}
  api_key: {type: secret, required: true}
responses:
  message: error.message
requests:
  basic:
    method: POST
    url: https://api.example.com/v1/basic?x=1
    auth: {type: basic, username: "{config.application_id}", password: "{config.api_key}"}
` + body + `  bearer:
    method: POST
    url: https://api.example.com/v1/bearer
    auth: {type: bearer, token: "{config.api_key}"}
` + body + `  header:
    method: PUT
    url: https://api.example.com/v1/header
    auth: {type: header, name: X-Api-Key, value: "{config.api_key}"}
    headers:
      X-Signature: {value: "key={config.api_key};v=1", secret: true}
` + body + `  query:
    method: POST
    url: https://api.example.com/v1/query?app={config.application_id}
    auth: {type: query, name: key, value: "{config.api_key}"}
` + body + `events:
  Basic: {vendor_event: basic, request: basic}
  Bearer: {vendor_event: bearer, request: bearer}
  Header: {vendor_event: header, request: header}
  Query: {vendor_event: query, request: query}
`
	bp, ds := engine.Compile("leak.yaml", []byte(src))
	if bp == nil {
		tb.Fatal(ds)
	}
	return bp
}

// leakText keeps the printable characters of s, at most max of them; ""
// when fewer than min are left.
func leakText(s string, min, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			continue
		}
		if n == max {
			break
		}
		b.WriteRune(r)
		n++
	}
	if n < min {
		return ""
	}
	return b.String()
}

// leakControl is another secret of the same length, sharing no character
// position with s.
func leakControl(s string) string {
	const alphabet = "Qz7Wq2Jv9Xk5Gm"
	var b strings.Builder
	i := 0
	for _, r := range s {
		c := rune(alphabet[i%len(alphabet)])
		if c == r {
			c = rune(alphabet[(i+1)%len(alphabet)])
		}
		b.WriteRune(c)
		i++
	}
	return b.String()
}

// leakForms are the forms of secret no output may show.
func leakForms(secret, user string) []string {
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), jsonInner(secret, true), jsonInner(secret, false)}
	var u strings.Builder
	for _, r := range secret {
		if r > 0xffff {
			r1, r2 := utf16Pair(r)
			fmt.Fprintf(&u, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&u, `\u%04x`, r)
		}
	}
	forms = append(forms, u.String(), strings.ToUpper(u.String()))
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for a := 0; a < 3; a++ {
			e := enc.EncodeToString(append(make([]byte, a), secret...))
			from, to := (8*a+5)/6, (8*a+8*len(secret))/6
			forms = append(forms, e[from:to])
		}
	}
	forms = append(forms, base64.StdEncoding.EncodeToString([]byte(user+":"+secret)))
	var out []string
	for _, f := range forms {
		if len(f) >= 4 && !contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

func jsonInner(s string, html bool) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(html)
	_ = e.Encode(s)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The echoing vendor: how it answers is set per run (runs are sequential).
var (
	echoMu  sync.Mutex
	echoCfg leakParams
)

func echoVendor(w http.ResponseWriter, r *http.Request) {
	echoMu.Lock()
	p := echoCfg
	echoMu.Unlock()
	if p.vendorAs == 4 {
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	body, _ := io.ReadAll(r.Body)
	status, out := echoAnswer(p, r.Method, r.URL, r.Header, body)
	w.WriteHeader(status)
	io.WriteString(w, out)
}

// echoAnswer is the vendor's answer echoing a request.
func echoAnswer(p leakParams, method string, u *url.URL, header http.Header, body []byte) (int, string) {
	echo := dumpRequest(method, u, header, body)
	if p.cut > 0 && p.cut < len(echo) {
		echo = echo[:p.cut]
	}
	echo = strings.Repeat("x... ", p.marks) + echo
	msg, _ := json.Marshal(echo)
	var out string
	switch p.vendorAs {
	case 1:
		out = echo
	case 2:
		var u strings.Builder
		for _, c := range string(msg[1 : len(msg)-1]) {
			if c > 0xffff {
				r1, r2 := utf16Pair(c)
				fmt.Fprintf(&u, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&u, `\u%04x`, c)
			}
		}
		out = `{"error":{"message":"` + u.String() + `"}}`
	case 3:
		full := `{"error":{"message":` + string(msg) + `}}`
		out = full[:len(full)*2/3]
	default:
		out = `{"error":{"message":` + string(msg) + `}}`
	}
	return []int{400, 500, 401, 409}[(p.cut+p.marks)%4], out
}

// leakOutputs runs every output path with this secret and returns what
// each shows.
func leakOutputs(t *testing.T, bp *engine.Blueprint, vendorURL, secret, user string, p leakParams) map[string]string {
	t.Helper()
	echoMu.Lock()
	echoCfg = p
	echoMu.Unlock()
	in, err := runtime.Bind(bp, "", map[string]any{"application_id": user, "api_key": secret})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	out := map[string]string{}
	kind := leakKinds[p.auth]
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))

	// An event carrying the secret in every encoding, and cut in values
	// after p.marks other cut values.
	var uesc strings.Builder
	for _, r := range secret {
		if r > 0xffff {
			r1, r2 := utf16Pair(r)
			fmt.Fprintf(&uesc, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&uesc, `\u%04X`, r)
		}
	}
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	pad := strings.Repeat("x", p.cut%45)
	carried := []string{
		secret,
		"Basic " + cred,
		base64.StdEncoding.EncodeToString([]byte(pad + secret + pad)),
		base64.URLEncoding.EncodeToString([]byte(pad[:len(pad)%3] + secret)),
		"https://x.example/" + url.PathEscape(secret) + "?k=" + url.QueryEscape(secret),
		pad + secret,
	}
	items := make([]string, 0, p.marks+1)
	for i := 0; i < p.marks; i++ {
		items = append(items, `{"p":`+str(strings.Repeat("x", 50))+`}`)
	}
	items = append(items, `{"p":`+str(pad+secret)+`}`)
	event := `{"type":"track","event":"` + kind + `","message_id":` + str(secret) + `,"properties":{` +
		`"a":` + str(strings.Join(carried, " | ")) + `,"u":"` + uesc.String() + `","n":` + str(pad+secret) +
		`,"items":[` + strings.Join(items, ",") + `]}}`
	res := in.Evaluate([]byte(event))
	leakResult(out, "secret event", in, res)
	// The same with valid values: delivered, with the secret in its body.
	good := `{"type":"track","event":"` + kind + `","properties":{"a":` + str(strings.Join(carried, " | ")) + `,"u":"` + uesc.String() + `"}}`
	leakResult(out, "secret body", in, in.Evaluate([]byte(good)))
	if !in.CarriesSecret([]byte(event)) || !in.CarriesSecret([]byte(good)) {
		out["CarriesSecret"] += "false "
	}

	// A clean event, sent.
	clean := []byte(`{"type":"track","event":"` + kind + `","message_id":"m-1","properties":{"a":"hello","n":1}}`)
	res = in.Evaluate(clean)
	if res.Outcome != runtime.Deliver {
		t.Fatalf("clean event: %s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	req := res.Requests[0]
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{}
	for _, h := range req.Headers {
		header.Add(h.Name, h.Value)
	}
	_, answer := echoAnswer(p, req.Method, u, header, req.Body)
	for _, status := range []int{200, 400, 401, 429, 500} {
		v := in.Classify(req, status, http.Header{}, []byte(answer))
		out[fmt.Sprintf("Classify %d", status)] = v.Message
	}
	var logs bytes.Buffer
	logger := leakLogger(&logs)
	vu, _ := url.Parse(vendorURL)
	s := send.New(send.Options{VendorURL: vu, Logger: logger, Concurrency: 2, AttemptTimeout: 5 * time.Second})
	out["Do"] = attemptText(s.Do(context.Background(), in, "leak", req))
	bad := *req
	bad.URL = strings.Replace(req.URL, "api.example.com", "a b.example.com", 1)
	out["Do (URL does not parse)"] = attemptText(s.Do(context.Background(), in, "leak", &bad))

	// The dead letter.
	items2, err := send.Items(in, "leak", "leak@1.0.0", clean, res, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out["outbox item"] = leakDeadLetter(t, in, s, logger, items2)
	out["logs"] = logs.String()
	return out
}

// leakDeadLetter runs a worker over items with one attempt each and
// returns what the outbox keeps of them.
func leakDeadLetter(t *testing.T, in *runtime.Integration, s *send.Sender, logger *slog.Logger, items []*outbox.Item) string {
	t.Helper()
	q := outbox.NewMemory()
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	wk := &send.Worker{
		Queue:       q,
		Sender:      s,
		Policy:      send.Policy{MaxAttempts: 1, Base: time.Millisecond, Cap: time.Millisecond},
		Integration: func(*outbox.Item) (*runtime.Integration, bool) { return in, true },
		Poll:        time.Millisecond,
		Logger:      logger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := wk.Run(ctx, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	var out string
	for _, st := range []outbox.State{outbox.Dead, outbox.Pending, outbox.Delivered} {
		list, _, _ := q.List(ctx, st, "", 10)
		for _, it := range list {
			out += fmt.Sprintf("%s %s %s %s %s\n", it.State, it.URL, it.Method, it.MessageID, it.LastError)
		}
	}
	return out
}

// leakResult records every view of a result.
func leakResult(out map[string]string, name string, in *runtime.Integration, res runtime.Result) {
	out[name+": String"] = res.String()
	j, err := res.MarshalJSON()
	if err != nil {
		j = []byte(err.Error())
	}
	out[name+": MarshalJSON"] = string(j)
	out[name+": Message"] = res.Message
	var logs bytes.Buffer
	l := leakLogger(&logs)
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		l.Log(context.Background(), level, "result", "result", res)
	}
	out[name+": slog"] = logs.String()
	for i, q := range res.Requests {
		r := in.Redacted(q)
		out[fmt.Sprintf("%s: Redacted(request %d)", name, i)] = fmt.Sprint(r.Method, " ", r.URL, " ", r.Headers, " ", string(r.Body))
	}
}

// leakLogger writes every level to w through a text and a JSON handler,
// without times.
func leakLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "latency_ms" {
			return slog.Attr{}
		}
		return a
	}}
	return slog.New(teeHandler{slog.NewTextHandler(w, opts), slog.NewJSONHandler(w, opts)})
}

// attemptText is all an attempt shows.
func attemptText(a send.Attempt) string {
	s := a.Message
	if a.Err != nil {
		s += "\n" + a.Err.Error() + fmt.Sprintf("\n%v %+v", a.Err, a.Err)
		var ue *url.Error
		if errors.As(a.Err, &ue) {
			s += "\n" + ue.URL
		}
		for e := errors.Unwrap(a.Err); e != nil; e = errors.Unwrap(e) {
			s += "\n" + e.Error()
		}
	}
	return s
}

type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool { return t[0].Enabled(ctx, l) }

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(g string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(g)
	}
	return out
}

// FuzzNoSecretLeaksEncoded is FuzzNoSecretLeaks for the encodings and
// auths the JSON target leaves out: form bodies and query strings (with
// indexed flattening, ItemSku1=..., repeated names and joined lists), the
// secret in the URL (auth query), HMAC signatures (auth signature, form
// and JSON bodies) and OAuth 2.0 client credentials (a token endpoint on
// the same loopback server, which may echo the client credentials in its
// error answer or put them in the token it hands out).
//
// Per input: a secret (4 to 64 printable characters), a SKU text, the
// request (mode), how the vendor and the token endpoint echo what they
// received (raw, percent-encoded in upper- or lower-case hex with '+'
// for spaces, every byte percent-encoded, base64, JSON-escaped, JSON in
// \u escapes, the signature headers in upper-case hex), where the echo is
// cut (with or without a cut mark), how many items the event has and
// whether the event carries the secret itself (shape: the number of items
// less one in bits 0-1, carrying in bit 2, and the echo starting
// 12*(shape>>3) bytes into what the vendor saw, since a message shows 200
// characters of it).
//
// Output paths: those of FuzzNoSecretLeaks (Result.String, AppendJSON,
// LogValue through slog, Message, Integration.Redacted, Classify, the
// sender's Attempt message and error chain, the dead letter and the
// logs), with Integration.RedactURL of the request's URL and of its
// sandbox rewrite, and Redacted of the request as the sender sends it
// (token fetched, signed afresh).
//
// Forbidden forms: those of FuzzNoSecretLeaks, the percent-escapes in
// lower-case hex, every byte percent-encoded (either case), the OAuth
// Basic credential (golang.org/x/oauth2 query-escapes both halves), and
// the credentials made at send time: every signature the vendor received
// (its digest in lower- and upper-case hex) and every token handed out.
//
//	go test ./runtime/send -run '^$' -fuzz FuzzNoSecretLeaksEncoded -fuzztime 60s
func FuzzNoSecretLeaksEncoded(f *testing.F) {
	for _, s := range []struct {
		secret, sku     string
		mode, echo, tok uint8
		cut             uint16
		shape           uint8
	}{
		{"sk-test-123", "S-1", 0, 0, 0, 0, 2},            // form, auth query, raw echo, 3 items
		{"sk-test-123", "S 1", 0, 1, 0, 0, 6},            // ... percent-encoded (upper, '+'), the event carrying the secret
		{`p@ss w0rd/+=&"<>\`, "a|b", 0, 2, 0, 0, 1},      // ... lower-case hex
		{`p@ss w0rd/+=&"<>\`, "x", 1, 3, 0, 0, 3},        // query encoding, every byte escaped
		{"sk-live-abc", "S-9", 1, 4, 0, 0, 4},            // ... base64, the secret in the URL's query from the event
		{"clé-secrète-ü", "é", 1, 5, 0, 77, 0},           // ... JSON, cut
		{"sk-sign-key-1", "S-1", 2, 7, 0, 0, 1},          // signature (form): upper-case hex echo
		{"sk-sign-key-1", "S 2", 2, 0, 0, 150, 2},        // ... raw, cut
		{"*bcd", "S", 2, 6, 0, 33, 5},                    // ... \u escapes, the event carrying the secret
		{"sk-sign-json", "S-3", 3, 7, 0, 0, 0},           // signature (JSON, sha1)
		{"sk-sign-json", "S-3", 3, 2, 0, 201, 3},         // ... lower-case hex, cut with a mark
		{"cs-oauth-1", "S-1", 4, 0, 0, 0, 0},             // OAuth: token given, vendor echoes it raw
		{"cs-oauth-1", "S-1", 4, 1, 1, 0, 1},             // ... the token embeds the Basic credential
		{`c/s+o&a=u th`, "S-1", 4, 4, 2, 0, 2},           // ... the token endpoint refuses, echoing the request
		{`c/s+o&a=u th`, "S-1", 4, 2, 3, 0, 0},           // ... answers 5xx, echoing it (lower-case hex)
		{"cs-oauth-2", "S-1", 4, 5, 4, 90, 0},            // ... answers 200 with an error, cut
		{"cs-oauth-2", "S-1", 4, 3, 3, 0, 4},             // ... every byte escaped, the event carrying the secret
		{strings.Repeat("K9", 32), "S-1", 4, 6, 1, 0, 3}, // a long secret, \u escapes
		{"abcd", "abcd", 0, 4, 0, 0, 0},                  // a short secret, also the SKU
		{"sk-sign-key-1", "S-1", 2, 0, 0, 0, 12<<3 | 1},  // signature, the echo from its headers on
		{"sk-sign-json", "S-1", 3, 1, 0, 0, 14<<3 | 3},   // ... percent-encoded
		{"cs-oauth-3", "S-1", 4, 5, 3, 0, 6 << 3},        // OAuth: the token endpoint's echo from its headers on
		{"sk-test-123", "S-1", 0, 6, 0, 0, 20<<3 | 7},    // form: the echo from its body on, the event carrying the secret
	} {
		f.Add(s.secret, s.sku, s.mode, s.echo, s.tok, s.cut, s.shape)
	}
	bp := encBlueprint(f)
	srv := httptest.NewServer(http.HandlerFunc(encVendor))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, secretIn, skuIn string, mode, echo, tok uint8, cut uint16, shape uint8) {
		secret := leakText(secretIn, 4, 64)
		if secret == "" {
			t.Skip()
		}
		p := encParams{mode: mode % 5, echo: echo % 8, tok: tok % 5, cut: int(cut), items: int(shape%4) + 1,
			carry: shape&4 != 0, from: int(shape>>3) * 12, sku: leakText(skuIn, 0, 24)}
		got, creds := encOutputs(t, bp, srv.URL, secret, p)
		control, _ := encOutputs(t, bp, srv.URL, leakControl(secret), p)
		// Each run's senders keep their connections idle: closed, so that
		// thousands of runs do not hold thousands of sockets.
		srv.CloseClientConnections()
		var leaks []string
		for _, form := range append(encForms(secret), creds...) {
			for _, path := range sortedKeys(got) {
				if n, c := strings.Count(got[path], form), strings.Count(control[path], form); n > c {
					leaks = append(leaks, fmt.Sprintf("%s shows %q (%d times, %d with another secret):\n%s", path, form, n, c, got[path]))
				}
			}
		}
		if len(leaks) > 0 {
			t.Fatalf("secret %q, %+v: %d leaks; first:\n%s", secret, p, len(leaks), leaks[0])
		}
	})
}

type encParams struct {
	mode  uint8 // 0 form + auth query, 1 query encoding + auth query, 2 signature (form), 3 signature (JSON), 4 OAuth (form)
	echo  uint8 // 0 raw, 1 QueryEscape, 2 QueryEscape in lower-case hex, 3 every byte %XX, 4 base64, 5 JSON, 6 JSON in \u escapes, 7 signatures in upper-case hex
	tok   uint8 // token endpoint: 0 a token, 1 a token holding the Basic credential, 2 refuses (4xx), 3 fails (5xx), 4 answers 200 with an error; 2..4 echo the request
	cut   int   // where echoes are cut (0: not cut); odd: a cut mark follows
	items int   // items in the event
	from  int   // where the echo starts in what the vendor saw
	carry bool  // the event carries the secret (SKUs, note)
	sku   string
}

var encKinds = []string{"Form", "Query", "Signed", "SignedJSON", "OAuth"}

const encClientID = "app id/1"

// encBlueprint has one request per mode, each with a body of indexed
// items, a joined list and a repeated name.
func encBlueprint(tb testing.TB) *engine.Blueprint {
	tb.Helper()
	body := func(flat bool) string {
		b := `    body:
      order: {from: properties.order, type: string}
      note: {from: properties.note, type: string}
      skulist: {from: properties.items, each: {from: sku, type: string}, join: "|"}
`
		if flat {
			b += `      tags: {from: properties.items, each: {from: sku, type: string}}
      Item:
        from: properties.items
        type: array
        flatten: indexed
        items:
          Sku: {from: sku, type: string, required: true}
          Price: {from: price, type: number}
`
		} else {
			b += `      items:
        from: properties.items
        type: array
        items:
          sku: {from: sku, type: string, required: true}
`
		}
		return b
	}
	src := `key: leakenc
version: 1.0.0
name: Leak encodings
category: other
status: alpha
hosts: [api.example.com, auth.example.com]
config:
  application_id: {type: string, required: true}
  api_key: {type: secret, required: true}
responses:
  message: error.message
requests:
  form:
    method: POST
    url: https://api.example.com/v1/form?app=1
    encoding: form
    auth: {type: query, name: key, value: "{config.api_key}"}
` + body(true) + `      k: {from: {config: api_key}, secret: true}
  query:
    method: GET
    url: https://api.example.com/v1/query?app=1
    encoding: query
    auth: {type: query, name: api_key, value: "k:{config.api_key}"}
` + body(true) + `  signed:
    method: POST
    url: https://api.example.com/v1/signed
    encoding: form
    auth: {type: signature, secret: "{config.api_key}", header: X-Signature, prefix: "sha256=", timestamp_header: X-Timestamp}
` + body(true) + `  signed_json:
    method: PUT
    url: https://api.example.com/v1/signed
    auth: {type: signature, secret: "{config.api_key}", header: X-Hub-Signature, prefix: "sha1=", algorithm: sha1}
` + body(false) + `  oauth:
    method: POST
    url: https://api.example.com/v1/oauth
    encoding: form
    auth:
      type: oauth2_client_credentials
      token_url: https://auth.example.com/oauth/token
      client_id: "{config.application_id}"
      client_secret: "{config.api_key}"
      scopes: [events.write]
` + body(true) + `events:
  Form: {vendor_event: form, request: form}
  Query: {vendor_event: query, request: query}
  Signed: {vendor_event: signed, request: signed}
  SignedJSON: {vendor_event: signed_json, request: signed_json}
  OAuth: {vendor_event: oauth, request: oauth}
`
	bp, ds := engine.Compile("leakenc.yaml", []byte(src))
	if bp == nil {
		tb.Fatal(ds)
	}
	return bp
}

// The vendor and token endpoint of FuzzNoSecretLeaksEncoded: how they
// answer is set per run, and what they receive is recorded.
var (
	encMu   sync.Mutex
	encCfg  encParams
	encSeen []http.Header // every request's headers, this run
)

func encVendor(w http.ResponseWriter, r *http.Request) {
	encMu.Lock()
	p := encCfg
	encSeen = append(encSeen, r.Header.Clone())
	encMu.Unlock()
	body, _ := io.ReadAll(r.Body)
	dump := encDump(r.Method, r.URL, r.Header, body)
	if r.URL.Path == "/oauth/token" {
		switch p.tok {
		case 0, 1:
			tok := "tok-" + base64.RawURLEncoding.EncodeToString([]byte(r.Header.Get("Authorization")))[:20]
			if p.tok == 1 {
				tok = "tok_" + strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":`+jsonText(tok)+`,"token_type":"bearer","expires_in":3600}`)
		case 2:
			w.WriteHeader([]int{400, 401, 403}[p.cut%3])
			io.WriteString(w, encEcho(p, dump, r.Header))
		case 3:
			w.WriteHeader([]int{500, 503}[p.cut%2])
			io.WriteString(w, encEcho(p, dump, r.Header))
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"error":"invalid_client","error_description":`+jsonText(encEcho(p, dump, r.Header))+`}`)
		}
		return
	}
	w.WriteHeader([]int{400, 500, 401, 422}[p.cut%4])
	io.WriteString(w, encEcho(p, dump, r.Header))
}

func jsonText(s string) string { b, _ := json.Marshal(s); return string(b) }

// encDump is what a vendor saw of a request.
func encDump(method string, u *url.URL, header http.Header, body []byte) string {
	dump := dumpRequest(method, u, header, body)
	if vals, err := url.ParseQuery(string(body)); err == nil && len(vals) > 0 {
		dump += fmt.Sprintf("\n%v", map[string][]string(vals)) // the pairs decoded
	}
	return dump
}

// dumpRequest is a request as a vendor echoes it: the request line with
// its query decoded, the headers sorted by name, then the body.
func dumpRequest(method string, u *url.URL, header http.Header, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\n", method, u.String(), u.Query().Encode())
	names := make([]string, 0, len(header))
	for n := range header {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %s\n", n, strings.Join(header[n], ", "))
	}
	b.Write(body)
	return b.String()
}

// encEcho is the dump written as p.echo says, from byte p.from (a
// message shows 200 characters: so the fuzzer can bring any part of the
// dump to the front), cut at p.cut.
func encEcho(p encParams, dump string, header http.Header) string {
	dump = dump[min(p.from, len(dump)):]
	var out string
	switch p.echo {
	case 1:
		out = "bad request: " + url.QueryEscape(dump)
	case 2:
		out = "bad request: " + lowerHex(url.QueryEscape(dump))
	case 3:
		var b strings.Builder
		for i := 0; i < len(dump); i++ {
			if dump[i] == ' ' {
				b.WriteByte('+')
			} else if i%2 == 0 {
				fmt.Fprintf(&b, "%%%02X", dump[i])
			} else {
				fmt.Fprintf(&b, "%%%02x", dump[i])
			}
		}
		out = "request=" + b.String()
	case 4:
		out = `{"error":{"message":"cannot read ` + base64.StdEncoding.EncodeToString([]byte(dump)) + `"}}`
	case 5:
		out = `{"error":{"message":` + jsonText(dump) + `}}`
	case 6:
		msg := jsonText(dump)
		var u strings.Builder
		for _, c := range msg[1 : len(msg)-1] {
			if c > 0xffff {
				r1, r2 := utf16Pair(c)
				fmt.Fprintf(&u, `\u%04x\u%04X`, r1, r2)
			} else {
				fmt.Fprintf(&u, `\u%04X`, c)
			}
		}
		out = `{"error":{"message":"` + u.String() + `"}}`
	case 7:
		var b strings.Builder
		for _, n := range []string{"Authorization", "X-Hub-Signature", "X-Signature"} {
			for _, v := range header.Values(n) {
				_, d, _ := strings.Cut(v, "=")
				fmt.Fprintf(&b, "expected %s %s, got %s; ", n, strings.ToUpper(d), strings.ToUpper(v))
			}
		}
		out = `{"error":{"message":` + jsonText(b.String()+dump) + `}}`
	default:
		out = dump
	}
	if p.cut > 0 {
		out = out[:p.cut%(len(out)+1)]
		if p.cut%2 == 1 {
			out += "..."
		}
	}
	return out
}

// lowerHex writes the percent-escapes of s in lower-case hex.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = bytes.ToLower(b[i+1 : i+2])[0], bytes.ToLower(b[i+2 : i+3])[0]
		}
	}
	return string(b)
}

// encForms are the forms of secret no output may show.
func encForms(secret string) []string {
	forms := leakForms(secret, encClientID)
	var up, low strings.Builder
	for i := 0; i < len(secret); i++ {
		fmt.Fprintf(&up, "%%%02X", secret[i])
		fmt.Fprintf(&low, "%%%02x", secret[i])
	}
	more := []string{lowerHex(url.QueryEscape(secret)), lowerHex(url.PathEscape(secret)), up.String(), low.String(),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(encClientID) + ":" + url.QueryEscape(secret)))}
	for _, f := range more {
		if len(f) >= 4 && !contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

// encCreds are the credentials made at send time that the headers hold:
// signature digests (lower- and upper-case hex) and bearer tokens.
func encCreds(headers []http.Header) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 8 && !contains(out, s) {
			out = append(out, s)
		}
	}
	for _, h := range headers {
		for _, name := range []string{"X-Signature", "X-Hub-Signature"} {
			if v := h.Get(name); v != "" {
				_, d, _ := strings.Cut(v, "=")
				add(v)
				add(d)
				add(strings.ToUpper(d))
			}
		}
		if v, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok {
			add(v)
		}
	}
	return out
}

// encOutputs runs every output path with this secret and returns what
// each shows, and the credentials made at send time.
func encOutputs(t *testing.T, bp *engine.Blueprint, vendorURL, secret string, p encParams) (map[string]string, []string) {
	t.Helper()
	encMu.Lock()
	encCfg, encSeen = p, nil
	encMu.Unlock()
	in, err := runtime.Bind(bp, "", map[string]any{"application_id": encClientID, "api_key": secret})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	out := map[string]string{}
	kind := encKinds[p.mode]

	// The event: items with SKUs (the secret in several encodings when
	// the event carries it), a note and an order id.
	skus := make([]string, p.items)
	for i := range skus {
		skus[i] = p.sku + fmt.Sprint(i)
	}
	note := "note " + p.sku
	if p.carry {
		carried := []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret)), "A|" + secret + "|B"}
		for i := range skus {
			skus[i] = carried[i%len(carried)]
		}
		note = "x " + secret
	}
	var items []string
	for i, s := range skus {
		items = append(items, fmt.Sprintf(`{"sku":%s,"price":%d.5}`, jsonText(s), i))
	}
	event := []byte(`{"type":"track","event":"` + kind + `","message_id":"m-1","properties":{"order":` + jsonText("o "+p.sku) +
		`,"note":` + jsonText(note) + `,"items":[` + strings.Join(items, ",") + `]}}`)
	res := in.Evaluate(event)
	leakResult(out, "event", in, res)
	out["event: AppendJSON"] = string(res.AppendJSON([]byte("x")))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s event: %s %s: %s", kind, res.Outcome, res.Reason, res.Message)
	}
	// (An event whose SKU holds the secret carries it too.)
	carries := in.CarriesSecret(event)
	if p.carry && !carries {
		t.Fatalf("CarriesSecret(%s) = false", event)
	}
	req := res.Requests[0]
	creds := encCreds([]http.Header{encHeader(req)})

	// The URL, as built and rewritten for a sandbox.
	out["RedactURL"] = in.RedactURL(req, req.URL)
	out["RedactURL (sandbox)"] = in.RedactURL(req, strings.Replace(req.URL, "https://api.example.com", vendorURL, 1))

	// The vendor's answer, read by the response rules.
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	answer := encEcho(p, encDump(req.Method, u, encHeader(req), req.Body), encHeader(req))
	for _, status := range []int{400, 500} {
		out[fmt.Sprintf("Classify %d", status)] = in.Classify(req, status, http.Header{}, []byte(answer)).Message
	}

	// Sent: the token fetched, signed afresh, the vendor echoing it all.
	var logs bytes.Buffer
	logger := leakLogger(&logs)
	vu, _ := url.Parse(vendorURL)
	s := send.New(send.Options{VendorURL: vu, Logger: logger, Concurrency: 2, AttemptTimeout: 5 * time.Second})
	out["Do"] = attemptText(s.Do(context.Background(), in, "leak", req))
	// The request as the sender sends it, in its redacted view.
	sent := *req
	if err := in.AuthorizeContext(context.Background(), &sent, &http.Client{Transport: rewrite{vu}}); err != nil {
		out["Authorize"] = err.Error() + fmt.Sprintf(" %v %+v", err, err)
	}
	in.Sign(&sent, time.Now())
	r := in.Redacted(&sent)
	out["Redacted (sent)"] = fmt.Sprint(r.Method, " ", r.URL, " ", r.Headers, " ", string(r.Body))
	creds = append(creds, encCreds([]http.Header{encHeader(&sent)})...)

	// The dead letter (an event carrying the secret is never stored).
	items2, err := send.Items(in, "leak", "leakenc@1.0.0", event, res, time.Now())
	switch {
	case carries && !errors.Is(err, send.ErrCarriesSecret):
		t.Fatalf("Items of an event carrying the secret: %v", err)
	case !carries && err != nil:
		t.Fatal(err)
	case !carries:
		out["outbox item"] = leakDeadLetter(t, in, s, logger, items2)
	}
	out["logs"] = logs.String()
	encMu.Lock()
	creds = append(creds, encCreds(encSeen)...)
	encMu.Unlock()
	return out, creds
}

// encHeader is req's headers as sent.
func encHeader(req *runtime.Request) http.Header {
	h := http.Header{}
	for _, x := range req.Headers {
		h.Add(x.Name, x.Value)
	}
	return h
}
