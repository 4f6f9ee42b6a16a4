package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

var update = flag.Bool("update", false, "rewrite golden files")

// cli runs the command in-process.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestValidateCatalog(t *testing.T) {
	out, errs, code := cli(t, "", "validate")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "0 errors") {
		t.Errorf("summary: %q", errs)
	}
}

// A copy of the Button blueprint with one key misspelt reports that key's
// line and column and a suggestion.
func TestValidateMisspeltKey(t *testing.T) {
	src, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "warn_if_absent: missing_attribution_token" {
			lines[i] = strings.Replace(l, "warn_if_absent", "warn_if_absnt", 1)
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatal("no warn_if_absent line")
	}
	col := strings.Index(lines[at], "warn_if_absnt") + 1
	file := filepath.Join(t.TempDir(), "button.yaml")
	os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644)
	out, _, code := cli(t, "", "validate", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	want := file + ":" + itoa(at+1) + ":" + itoa(col) + `: error unknown_key: unknown key warn_if_absnt in requests.order.body.btn_ref; did you mean "warn_if_absent"?`
	if !strings.Contains(out, want) {
		t.Errorf("got\n%s\nwant a line\n%s", out, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestValidatePositions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(src), 0o644)
		return p
	}
	syntaxErr := write("syntax.yaml", "key: demo\nversion: 1.0.0\nname: \"Demo\nstatus: alpha\n")
	badExpr := write("expr.yaml", `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      total:
        expr: |
          event.properties.total *
events:
  Order Completed: {vendor_event: purchase, request: r}
`)
	cases := []struct {
		file, want string
	}{
		{syntaxErr, syntaxErr + ":3:7: error yaml_syntax:"},
		{badExpr, badExpr + ":14:35: error expr_syntax: unexpected end of the expression"},
	}
	for _, c := range cases {
		out, _, code := cli(t, "", "validate", c.file)
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("exit %d, got\n%s\nwant a line starting\n%s", code, out, c.want)
		}
	}
	// JSON output carries the same facts.
	out, _, _ := cli(t, "", "validate", "--format", "json", badExpr)
	var doc struct {
		Diagnostics []struct {
			Line, Col int
			Code      string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Diagnostics) != 1 || doc.Diagnostics[0].Line != 14 || doc.Diagnostics[0].Code != "expr_syntax" {
		t.Errorf("json: %v %s", err, out)
	}
}

func TestTestShipped(t *testing.T) {
	out, _, code := cli(t, "", "test")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	last := lastLine(out)
	m := regexp.MustCompile(`^(\d+) passed, 0 failed$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q", last)
	}
	if n := atoi(m[1]); n < 60 {
		t.Errorf("%d cases; want at least 60", n)
	}
	// The docs quote the count: README.md's two commands and status, and
	// docs/conformance.md's shipped vectors.
	n := m[1]
	spaced := n
	if len(n) > 3 {
		spaced = n[:len(n)-3] + " " + n[len(n)-3:]
	}
	for _, c := range []struct{ file, says string }{
		{"../../README.md", "(today: `" + last + "`"},
		{"../../README.md", "with " + spaced + " conformance vectors"},
		{"../../docs/conformance.md", "runs them all: `" + last + "`"},
	} {
		if src, err := os.ReadFile(c.file); err != nil || !strings.Contains(string(src), c.says) {
			t.Errorf("%s does not say %q (%v): the count changed, or its sentence did", c.file, c.says, err)
		}
	}
}

// A hand-broken expectation prints a diff naming the JSON path and exits 1.
func TestTestBrokenExpectation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broken.yaml")
	os.WriteFile(p, []byte(`blueprint: button
config: {application_id: app-abc123, api_key: sk-test-123}
cases:
  - name: total is off by one
    event: {type: track, event: Order Completed, timestamp: "2026-01-01T00:00:00Z",
            context: {consent: {advertising: true}},
            properties: {order_id: o-1, total: 25.5, currency: USD, products: [{sku: s, price: 25.5}]}}
    expect:
      outcome: deliver
      requests:
        - method: POST
          url: https://api.usebutton.com/v1/order
          body: {order_id: o-1, total: 2551, currency: USD, purchase_date: "2026-01-01T00:00:00Z",
                 line_items: [{identifier: s, sku: s, quantity: 1, amount: 2550, total: 2550}]}
`), 0o644)
	out, _, code := cli(t, "", "test", p)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"FAIL " + p + ":4: total is off by one",
		"requests[0].body.total: expected 2551, got 2550",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if last := lastLine(out); last != "0 passed, 1 failed" {
		t.Errorf("last line %q", last)
	}
}

// A folder's vector files need not be named *.vectors.yaml: any YAML file
// with a top-level cases key is one (a failing case there must fail the
// run, not vanish as "0 passed, 0 failed"), and validate leaves it out.
func TestFolderVectorsWhateverTheirName(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../blueprints/button/overlays/custom-event.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "overlay.yaml"), src, 0o644)
	os.MkdirAll(filepath.Join(dir, "cases"), 0o755)
	os.WriteFile(filepath.Join(dir, "cases", "button.yml"), []byte(`blueprint: button
config: {application_id: app-abc123, api_key: sk-test-123}
cases:
  - name: a page is not mapped
    event: {type: page}
    expect: {outcome: skip, reason: event_not_mapped}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "wrong.yaml"), []byte(`blueprint_file: ./overlay.yaml
config: {application_id: app-abc123, api_key: sk-test-123}
cases:
  - name: deliberately wrong
    event: {type: page}
    expect: {outcome: skip, reason: consent_denied}
`), 0o644)
	out, errs, code := cli(t, "", "test", dir)
	if code != 1 || lastLine(out) != "1 passed, 1 failed" || !strings.Contains(out, "FAIL "+filepath.Join(dir, "wrong.yaml")+":4") {
		t.Errorf("test DIR: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = cli(t, "", "validate", dir)
	if code != 0 || !strings.Contains(errs, "1 file: 0 errors") {
		t.Errorf("validate DIR: exit %d\n%s%s", code, out, errs)
	}
}

func TestTestUsage(t *testing.T) {
	if _, _, code := cli(t, "", "test", "--run", "("); code != 2 {
		t.Errorf("bad regex: exit %d, want 2", code)
	}
	if _, _, code := cli(t, "", "test", "/no/such/file"); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
	if _, _, code := cli(t, "", "nosuchverb"); code != 2 {
		t.Errorf("unknown verb: exit %d, want 2", code)
	}
	for _, args := range [][]string{{"dlq"}, {"dlq", "bogus"}, {"outbox", "bogus"}, {"completion", "bash"},
		{"eval", "--blueprint", "nosuch"}, {"docs", "nosuch"},
		{"eval", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-1", "/no/such/event.json"}, {"catalog", "nosuch"}, {"eval", "--blueprint", "./nosuch.yaml"}} {
		if _, _, code := cli(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
}

const orderEvent = `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","total":25.5,"currency":"USD","note":"sk-live-abc","products":[{"product_id":"p-1","price":25.5}]}}`

// The secret given on the command line never appears, in any format, even
// when an event carries it.
func TestEvalRedactsSecrets(t *testing.T) {
	secret := "sk-live-abc"
	forms := []string{secret, base64.StdEncoding.EncodeToString([]byte(secret + ":")), base64.StdEncoding.EncodeToString([]byte(secret))}
	custom := filepath.Join(t.TempDir(), "overlay.yaml")
	os.WriteFile(custom, []byte("extends: button@0.1.0\nevents:\n  Secret Echo: {vendor_event: echo, request: activity}\n"), 0o644)
	echo := `{"type":"track","event":"Secret Echo","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"k":"sk-live-abc","b":"` + forms[1] + `"}}`
	for _, format := range []string{"text", "json"} {
		for _, bp := range []string{"button", custom} {
			out, errs, code := cli(t, orderEvent+"\n"+echo+"\n", "eval", "--blueprint", bp, "--config", "application_id=app-abc123", "--config", "api_key="+secret, "--format", format, "-")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, f := range forms {
				if strings.Contains(out+errs, f) {
					t.Errorf("%s output holds %q:\n%s", format, f, out)
				}
			}
			if !strings.Contains(out, "Basic ***") {
				t.Errorf("%s output has no redacted Authorization:\n%s", format, out)
			}
		}
	}
	// A refused config names the key, not the value.
	out, errs, code := cli(t, orderEvent, "eval", "--blueprint", "button", "--config", "application_id=bad", "--config", "api_key="+secret, "-")
	if code != 1 || strings.Contains(errs, secret) || !strings.Contains(errs, "application_id") {
		t.Errorf("exit %d: %s", code, errs)
	}
	// The refusal is eval's decision: on stdout too, in text as in JSON,
	// for whoever reads only stdout (DESIGN §5: eval prints the decision).
	if want := "reject invalid_config [application_id]: "; !strings.HasPrefix(out, want) || strings.Contains(out, secret) {
		t.Errorf("stdout %q, want it to start with %q", out, want)
	}
}

func TestEvalExitCodes(t *testing.T) {
	if _, errs, code := cli(t, orderEvent, "eval", "--blueprint", "button", "--config", "application_id=app-abc123", "-"); code != 1 || !strings.Contains(errs, "api_key") {
		t.Errorf("missing api_key: exit %d: %s", code, errs)
	}
	if _, _, code := cli(t, orderEvent, "eval", "--config", "api_key=x", "-"); code != 2 {
		t.Errorf("no --blueprint: exit %d", code)
	}
	if _, _, code := cli(t, orderEvent, "eval", "--blueprint", "button", "--variant", "nope", "--config", "application_id=app-abc123", "--config", "api_key=sk-1", "-"); code != 2 {
		t.Errorf("unknown variant: exit %d", code)
	}
	// Malformed events are results, not failures.
	out, _, code := cli(t, "{\"type\":\n", "eval", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-123456", "--format", "json", "-")
	if code != 0 || !strings.Contains(out, `"reason":"invalid_event"`) {
		t.Errorf("malformed: exit %d: %s", code, out)
	}
}

// NDJSON on stdin: one result per line, in order; a pretty-printed event on
// stdin is one event.
func TestEvalStdinForms(t *testing.T) {
	args := []string{"eval", "--blueprint", "button", "--variant", "retail", "--config", "application_id=app-abc123", "--config", "api_key=sk-123456", "--format", "json", "-"}
	nd := orderEvent + "\n\n" + `{"type":"page"}` + "\nnot json\n" + `{"type":"track","event":"Product Added","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"sku":"s"}}` + "\n"
	out, _, code := cli(t, nd, args...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{`"outcome":"deliver"`, `"reason":"event_not_mapped"`, `"reason":"invalid_event"`, `"vendor_event":"add_to_cart"`}
	if len(lines) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s lacks %s", i+1, lines[i], w)
		}
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, []byte(orderEvent), "", "  ")
	out, _, _ = cli(t, pretty.String(), args...)
	if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, `"outcome":"deliver"`) {
		t.Errorf("pretty event: %s", out)
	}
	// A line over the limit is reported, not kept.
	big := `{"type":"track","event":"Order Completed","properties":{"x":"` + strings.Repeat("a", 2000) + `"}}`
	out, _, _ = cli(t, big+"\n"+orderEvent+"\n", append([]string{"--max-event-size", "1000"}, args...)...)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "the limit is 1000") || !strings.Contains(lines[1], `"deliver"`) {
		t.Errorf("oversize line: %s", out)
	}
}

func TestDocsGolden(t *testing.T) {
	out, errs, code := cli(t, "", "docs", "button@0.1.0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden := filepath.Join("testdata", "button-0.1.0.md")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(out), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("docs differ from %s (run go test ./cmd/blueprint -update):\n%s", golden, out)
	}
	// The facts of the integration page.
	for _, fact := range []string{"`application_id`", "`api_key`", "**secret**", "Product Added", "`add_to_cart`",
		"Order Completed", "`purchase`", "`order_id`", "`total`", "`currency`", "`line_items`", "`customer_id`",
		"`ip_address`", "`user_agent`", "**advertising**", "0.1.0", "alpha", "`api.usebutton.com`",
		// The page's own sections, from the blueprint's docs.
		"## Prerequisites", "Settings > Applications", "Settings > API Keys", "## Verify", "## Troubleshooting",
		"| failed, 401", "Check the API key", "| failed, 400", "`order_id`, `total`, `currency` and `line_items`",
		"`missing_attribution_token`) |", "Capture `btn_ref`", "`invalid_config` `application_id`"} {
		if !strings.Contains(out, fact) {
			t.Errorf("docs lack %s", fact)
		}
	}
	// The default variant sends neither ip_address nor user_agent (not
	// fields of the Order API): its identity table says so.
	_, ids, _ := strings.Cut(out, "\n## Identity\n")
	ids, _, _ = strings.Cut(ids, "\n## ")
	_, def, _ := strings.Cut(ids, "### Variant `default`")
	def, retail, _ := strings.Cut(def, "### Variant `retail`")
	if strings.Contains(def, "| `ip_address`") || strings.Contains(def, "| `user_agent`") || !strings.Contains(def, "| `customer_id`") ||
		!strings.Contains(retail, "| `ip_address`") || !strings.Contains(retail, "| `user_agent`") {
		t.Errorf("identity by variant:\n%s", ids)
	}
}

func TestCatalogJSON(t *testing.T) {
	out, _, code := cli(t, "", "catalog", "button", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v struct {
		Key, Name, Category, Status, Website string
		ConfigFields                         []struct {
			Key, Label, Type, Placeholder string
			HelpText                      string `json:"help_text"`
			Required                      bool
		} `json:"config_fields"`
		Variants []struct {
			Key, Name     string
			DefaultConfig map[string]any `json:"default_config"`
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Key != "button" || v.Name != "Button" || v.Category != "attribution" || v.Status != "beta" || v.Website != "https://developer.usebutton.com/" {
		t.Errorf("vendor: %+v", v)
	}
	if len(v.ConfigFields) != 2 || v.ConfigFields[0].Key != "application_id" || v.ConfigFields[0].Label != "Application ID" ||
		v.ConfigFields[0].Placeholder != "app-xxxxxxxxxxxxxxxx" || v.ConfigFields[0].HelpText != "From Settings > Applications." ||
		v.ConfigFields[1].Key != "api_key" || v.ConfigFields[1].Type != "secret" || !v.ConfigFields[1].Required {
		t.Errorf("config fields: %+v", v.ConfigFields)
	}
	if len(v.Variants) != 2 || v.Variants[0].Key != "default" || v.Variants[1].Key != "retail" || v.Variants[1].DefaultConfig == nil {
		t.Errorf("variants: %+v", v.Variants)
	}
	// Exactly the keys of the platform's Catalog Vendor Object (its example
	// is Button's entry): a consumer may refuse any other.
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	keysOf := func(m map[string]any) string { return strings.Join(slices.Sorted(maps.Keys(m)), ",") }
	if got, want := keysOf(raw), "category,config_fields,description,key,name,status,variants,website"; got != want {
		t.Errorf("vendor keys %s, want %s", got, want)
	}
	for _, f := range raw["config_fields"].([]any) {
		if got, want := keysOf(f.(map[string]any)), "help_text,key,label,placeholder,required,type"; got != want {
			t.Errorf("config field keys %s, want %s", got, want)
		}
	}
	for _, v := range raw["variants"].([]any) {
		if got, want := keysOf(v.(map[string]any)), "default_config,description,key,name"; got != want {
			t.Errorf("variant keys %s, want %s", got, want)
		}
	}
	out, _, code = cli(t, "", "catalog", "--format", "json")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("all: exit %d %s", code, out)
	}
}

func TestList(t *testing.T) {
	out, _, code := cli(t, "", "list")
	if code != 0 || !regexp.MustCompile(`button\s+0\.1\.0\s+alpha\s+default, retail`).MatchString(out) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// Every verb has --help with an example.
func TestHelp(t *testing.T) {
	for _, verb := range []string{"validate", "test", "eval", "docs", "list", "catalog", "init", "diff"} {
		out, _, code := cli(t, "", verb, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "blueprint "+verb) {
			t.Errorf("%s --help: exit %d\n%s", verb, code, out)
		}
	}
}

// Every verb listed by 'blueprint --help', cobra's own help verb included,
// and every subcommand, has --help with an example.
func TestHelpEveryVerbHasExample(t *testing.T) {
	root := newRoot(strings.NewReader(""), io.Discard, io.Discard)
	root.InitDefaultHelpCmd() // as Execute does
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			p := append(append([]string(nil), path...), sub.Name())
			out, _, code := cli(t, "", append(p, "--help")...)
			if code != 0 || !strings.Contains(out, "Examples:") {
				t.Errorf("blueprint %s --help: exit %d, no example\n%s", strings.Join(p, " "), code, out)
			}
			walk(p, sub)
		}
	}
	walk(nil, root)
}

// No verb, and help about a verb that does not exist, are usage errors
// (exit 2), as an unknown verb is; 'blueprint --help' and 'blueprint help
// VERB' are not.
func TestUsageErrorsWithoutVerb(t *testing.T) {
	out, errs, code := cli(t, "")
	if code != 2 || out != "" || !strings.Contains(errs, "Available Commands:") {
		t.Errorf("no verb: exit %d, stdout %q\n%s", code, out, errs)
	}
	for _, args := range [][]string{{"help", "nosuch"}, {"help", "dlq", "nosuch"}} {
		if _, errs, code := cli(t, "", args...); code != 2 || !strings.Contains(errs, "unknown command") {
			t.Errorf("%v: exit %d\n%s", args, code, errs)
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "eval"}, {"help", "dlq", "replay"}, {"--version"}} {
		if out, errs, code := cli(t, "", args...); code != 0 || out == "" {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// Every example in --help works when pasted at the repository root: each
// runs and exits 0 (stdin redirections are honoured; pipes from echo are
// fed their text).
func TestHelpExamplesRun(t *testing.T) {
	root := newRoot(nil, nil, nil)
	// The delivery examples talk to "blueprint fake-button --listen
	// 127.0.0.1:8787" (a server: run here on a free port, put in their
	// place, so that a busy 8787 changes nothing) and keep state in
	// /tmp/bp-state (a temporary folder here).
	fb := fakebutton.New(fakebutton.Options{})
	fakeURL, err := fb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	fakeHost := strings.TrimPrefix(fakeURL, "http://")
	state := t.TempDir()
	// init's examples write into /tmp/my-blueprints: a temporary folder here.
	scratch := t.TempDir()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	// send's examples fill the outbox that dlq's examples read.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name() == "send" && all[j].Name() != "send" })
	for _, c := range all {
		lines := strings.Split(strings.ReplaceAll(c.Example, "\\\n", " "), "\n")
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if !strings.HasPrefix(l, "blueprint ") && !strings.HasPrefix(l, "echo ") || strings.HasPrefix(l, "blueprint fake-button") ||
				strings.HasPrefix(l, "blueprint fake-kafka") {
				continue
			}
			l = strings.ReplaceAll(l, "127.0.0.1:8787", fakeHost)
			l = strings.ReplaceAll(l, "/tmp/bp-state", state)
			l = strings.ReplaceAll(l, "/tmp/my-blueprints", scratch)
			if strings.HasPrefix(l, "blueprint dlq show") {
				continue // names an ID of the reader's own outbox
			}
			stdin := ""
			if pre, cmd, ok := strings.Cut(l, "|"); ok {
				q := regexp.MustCompile(`echo '([^']*)'`).FindStringSubmatch(pre)
				if q == nil {
					t.Errorf("cannot run example %q", l)
					continue
				}
				stdin, l = q[1], strings.TrimSpace(cmd)
			}
			if cmd, _, ok := strings.Cut(l, ">"); ok {
				l = strings.TrimSpace(cmd) // output redirection: the output is not kept
			}
			if cmd, file, ok := strings.Cut(l, "<"); ok {
				b, err := os.ReadFile(strings.TrimSpace(file))
				if err != nil {
					t.Errorf("example %q: %v", l, err)
					continue
				}
				stdin, l = string(b), strings.TrimSpace(cmd)
			}
			args := shellFields(strings.TrimPrefix(l, "blueprint "))
			out, errs, code := cli(t, stdin, args...)
			if code != 0 {
				t.Errorf("example %q exits %d:\n%s%s", l, code, out, errs)
			}
		}
	}
}

// shellFields splits like a shell, for the simple quoting of examples.
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == ' ':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// TestServeKafkaUsage: --role, --kafka-instance-id and --kafka-take-over
// are of Kafka mode (the last of the process that owns the state),
// only the four roles, and roles process and deliver take no --state and
// no --ingest-listen (they keep no state and take no events).
func TestServeKafkaUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--state", dir, "--role", "ingest"}, "--role"},
		{[]string{"serve", "--state", dir, "--kafka-instance-id", "p-1"}, "--kafka-instance-id"},
		{[]string{"serve", "--state", dir, "--kafka-take-over"}, "--kafka-take-over need --kafka-brokers"},
		{[]string{"serve", "--kafka-brokers", "127.0.0.1:1", "--role", "deliver", "--kafka-take-over"}, "--kafka-take-over is of the process that owns the state"},
		{[]string{"serve", "--state", dir, "--kafka-brokers", "127.0.0.1:1", "--role", "bogus"}, "--role"},
		{[]string{"serve", "--state", dir, "--kafka-brokers", "127.0.0.1:1", "--role", "deliver"}, "--state is not used by role deliver"},
		{[]string{"serve", "--ingest-listen", "127.0.0.1:0", "--kafka-brokers", "127.0.0.1:1", "--role", "process"}, "--ingest-listen is not used by role process"},
	} {
		if _, errOut, code := cli(t, "", tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2 (usage) saying %q; stderr %q", tc.args, code, tc.want, errOut)
		}
	}
}
