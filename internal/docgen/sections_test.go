package docgen_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/docgen"
)

const head = `key: demo
version: 1.0.0
name: Demo
category: analytics
status: beta
hosts: [api.example.com]
`

func compile(t *testing.T, src string, opts ...engine.Option) *engine.Blueprint {
	t.Helper()
	bp, ds := engine.Compile("demo.yaml", []byte(src), opts...)
	if bp == nil || ds.HasErrors() {
		t.Fatalf("does not compile:\n%v", ds)
	}
	return bp
}

func markdown(t *testing.T, bp *engine.Blueprint, variant string) string {
	t.Helper()
	md, err := docgen.Markdown(bp, variant)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// section returns the text under "## title" up to the next "## " heading,
// or "" when there is none.
func section(md, title string) string {
	_, after, ok := strings.Cut(md, "\n## "+title+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

// tableRows returns the rows of the first table after marker in md.
func tableRows(md, marker string) []string {
	_, after, _ := strings.Cut(md, marker)
	var rows []string
	started := false
	for _, l := range strings.Split(after, "\n") {
		switch {
		case strings.HasPrefix(l, "| "):
			started = true
			rows = append(rows, l)
		case started:
			return rows[2:] // without the header and the rule
		}
	}
	if len(rows) < 2 {
		return nil
	}
	return rows[2:]
}

func TestDocsSections(t *testing.T) {
	src := head + `docs:
  prerequisites:
    - A Demo account.
    - |-
      An API key (Settings > Keys),
      kept secret.
  verify: |-
    Send one event.

    Then look for it in the Demo console.
  troubleshooting:
    - {symptom: "failed, 401", meaning: the key is wrong, fix: "check api_key | rotate it"}
    - {symptom: "skipped consent_denied", fix: expected}
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      id: {from: properties.id}
events:
  Order Completed: {vendor_event: purchase, request: track}
`
	md := markdown(t, compile(t, src), "")
	pre, conf, verify, trouble := strings.Index(md, "\n## Prerequisites\n"), strings.Index(md, "\n## Configuration\n"),
		strings.Index(md, "\n## Verify\n"), strings.Index(md, "\n## Troubleshooting\n")
	if pre < 0 || verify < 0 || trouble < 0 || !(pre < conf && conf < verify && verify < trouble) {
		t.Fatalf("sections missing or out of order (prerequisites %d, configuration %d, verify %d, troubleshooting %d):\n%s", pre, conf, verify, trouble, md)
	}
	if got, want := section(md, "Prerequisites"), "\n- A Demo account.\n- An API key (Settings > Keys),\n  kept secret.\n"; got != want {
		t.Errorf("prerequisites = %q, want %q", got, want)
	}
	if got, want := section(md, "Verify"), "\nSend one event.\n\nThen look for it in the Demo console.\n"; got != want {
		t.Errorf("verify = %q, want %q", got, want)
	}
	want := []string{
		`| failed, 401 | the key is wrong | check api_key \| rotate it |`,
		`| skipped consent_denied | — | expected |`,
	}
	if got := tableRows(md, "## Troubleshooting"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("troubleshooting rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Without docs, none of the three sections is written.
	src = strings.Replace(src, src[strings.Index(src, "docs:"):strings.Index(src, "requests:")], "", 1)
	md = markdown(t, compile(t, src), "")
	for _, s := range []string{"Prerequisites", "Verify", "Troubleshooting"} {
		if strings.Contains(md, "## "+s) {
			t.Errorf("a blueprint without docs has a %s section", s)
		}
	}
}

// An overlay inherits its base's docs: keys merge, lists are replaced.
func TestOverlayInheritsDocs(t *testing.T) {
	base := head + `docs:
  prerequisites: [A Demo account.]
  verify: Send one event.
  troubleshooting:
    - {symptom: "failed, 401", fix: check api_key}
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      id: {from: properties.id}
events:
  Order Completed: {vendor_event: purchase, request: track}
`
	cat, err := engine.NewCatalog(fstest.MapFS{"demo/1.0.0.yaml": {Data: []byte(base)}})
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(t, compile(t, "extends: demo@1.0.0\ndocs:\n  verify: Send two events.\n", engine.WithCatalog(cat)), "")
	if !strings.Contains(section(md, "Prerequisites"), "- A Demo account.") ||
		section(md, "Verify") != "\nSend two events.\n" ||
		!strings.Contains(section(md, "Troubleshooting"), "| failed, 401 | — | check api_key |") {
		t.Errorf("overlay docs:\n%s", md)
	}
	md = markdown(t, compile(t, "extends: demo@1.0.0\ndocs:\n  troubleshooting: null\n", engine.WithCatalog(cat)), "")
	if strings.Contains(md, "## Troubleshooting") || !strings.Contains(md, "## Verify") {
		t.Errorf("an overlay removing troubleshooting:\n%s", md)
	}
}

// A response rule that earlier rules always take first can never match:
// the table leaves it out. A rule with when takes nothing.
func TestShadowedResponseRuleDropped(t *testing.T) {
	src := head + `responses:
  rules:
    - {status: 200, when: 'body.ok == false', outcome: failed, message: refused in a 200}
    - {status: 200, outcome: delivered}
    - {status: 429, when: 'headers["retry-after"] != nil', outcome: retry}
    - {status: 4xx, outcome: failed, message: any 4xx}
    - {status: 401, outcome: failed, message: never 401}
    - {status: [403, 404], when: 'status > 0', outcome: retry, message: never 403}
    - {status: [5xx], outcome: retry, message: own 5xx}
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    responses:
      rules:
        - {status: [409, 2xx], outcome: duplicate, message: own 409}
    body:
      id: {from: properties.id}
events:
  Order Completed: {vendor_event: purchase, request: track}
`
	md := markdown(t, compile(t, src), "")
	// The request's 409, 2xx takes every 2xx: both 200 rules and the
	// default 2xx go; 4xx takes 401, 403 and 404 (a when does not save a
	// rule whose statuses are taken); the blueprint's 5xx takes the
	// default retry's 408, 429 and 5xx with the 4xx rule.
	got := tableRows(md, "\nResponses (")
	joined := strings.Join(got, "\n")
	for _, gone := range []string{"never 401", "never 403", "refused in a 200", "| 200 |  | delivered", "(default) 2xx", "(default) timeout"} {
		if strings.Contains(joined, gone) {
			t.Errorf("a rule that can never match is listed (%s):\n%s", gone, joined)
		}
	}
	for _, kept := range []string{"own 409", "`headers[\"retry-after\"] != nil`", "any 4xx", "own 5xx", "(default) any other status"} {
		if !strings.Contains(joined, kept) {
			t.Errorf("a rule that can match is missing (%s):\n%s", kept, joined)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d rows, want 5:\n%s", len(got), joined)
	}
	if !strings.Contains(md, "6 rules that can never match, as earlier rules take every status each names, are not shown") {
		t.Errorf("the table does not say rules were left out:\n%s", md)
	}
}

// Each variant's identity table lists only what its requests send: through
// a body field, a header, an expression or another value. A value only a
// filter reads is listed among the shared values, not as sent.
func TestVariantIdentityTable(t *testing.T) {
	src := head + `identity:
  user_id: {from: user_id, type: string}
  ip: {from: context.ip, type: string}
  agent: {from: context.user_agent, type: string}
  device: {from: context.device.id, type: string}
values:
  agent_lower: {expr: 'lower(values.agent)'}
  region: {from: context.region, type: string}
  plan: {from: properties.plan, type: string}
requests:
  order:
    method: POST
    url: https://api.example.com/v1/order
    body:
      customer: {value: user_id}
  activity:
    method: POST
    url: https://api.example.com/v1/activity/{values.region}
    headers:
      X-Forwarded-For: "{values.ip}"
    body:
      ua: {expr: 'values.agent_lower + "!"'}
events:
  Order Completed: {vendor_event: purchase, request: order}
variants:
  default: {name: Default}
  web:
    name: Web
    events:
      Order Completed: {vendor_event: purchase, request: activity, filter: 'values.plan == "pro"'}
  both:
    name: Both
    events:
      Product Added: {vendor_event: add, request: activity, filter: 'values.plan == "pro"'}
`
	md := markdown(t, compile(t, src), "")
	ids := section(md, "Identity")
	for _, c := range []struct {
		variant string
		sent    []string
		not     string
	}{
		{"default", []string{"user_id"}, "Not sent: `ip`, `agent`, `device`."},
		{"web", []string{"ip", "agent"}, "Not sent: `user_id`, `device`."},
		{"both", []string{"user_id", "ip", "agent"}, "Not sent: `device`."},
	} {
		_, table, ok := strings.Cut(ids, "### Variant `"+c.variant+"`\n")
		if !ok {
			t.Fatalf("no identity table for %s:\n%s", c.variant, ids)
		}
		table, _, _ = strings.Cut(table, "###")
		var names []string
		for _, row := range tableRows(table, "") {
			names = append(names, strings.Trim(strings.Fields(row)[1], "`"))
		}
		if strings.Join(names, " ") != strings.Join(c.sent, " ") {
			t.Errorf("variant %s lists %v, want %v:\n%s", c.variant, names, c.sent, table)
		}
		if !strings.Contains(table, c.not) {
			t.Errorf("variant %s: no %q:\n%s", c.variant, c.not, table)
		}
	}
	values := section(md, "Shared values")
	_, def, _ := strings.Cut(values, "### Variant `default`\n")
	def, _, _ = strings.Cut(def, "###")
	if !strings.Contains(def, "None.") || !strings.Contains(def, "Not read: `agent_lower`, `region`, `plan`.") {
		t.Errorf("default's shared values:\n%s", def)
	}
	_, web, _ := strings.Cut(values, "### Variants `web`, `both`\n")
	if !strings.Contains(web, "| `agent_lower` |") || !strings.Contains(web, "| `region` |") || !strings.Contains(web, "| `plan` |") {
		t.Errorf("web and both read agent_lower, region and plan (the filter):\n%s", values)
	}

	// One variant documented: its table only, under its name.
	md = markdown(t, compile(t, src), "web")
	ids = section(md, "Identity")
	if !strings.Contains(ids, "### Variant `web`") || strings.Contains(ids, "| `user_id` |") || !strings.Contains(ids, "| `ip` |") {
		t.Errorf("--variant web identity:\n%s", ids)
	}
}

// When every variant sends the same identifiers there is one table, with
// no variant headings.
func TestSameIdentityOneTable(t *testing.T) {
	src := head + `identity:
  user_id: {from: user_id, type: string}
requests:
  order:
    method: POST
    url: https://api.example.com/v1/order
    body:
      customer: {value: user_id}
events:
  Order Completed: {vendor_event: purchase, request: order}
variants:
  default: {name: Default}
  more:
    name: More
    events:
      Product Added: {vendor_event: add, request: order}
`
	ids := section(markdown(t, compile(t, src), ""), "Identity")
	if strings.Contains(ids, "###") || strings.Contains(ids, "Not sent") || !strings.Contains(ids, "| `user_id` |") {
		t.Errorf("identity:\n%s", ids)
	}
}

// The Consent section has a table (DESIGN §5: docs prints the consent
// table): one row per source in order, then what missing consent means.
func TestConsentTable(t *testing.T) {
	src := head + `consent:
  category: advertising
  from: [context.consent.advertising, context.consent.canonical.marketing]
  when_missing: deny
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      id: {from: properties.id}
events:
  Order Completed: {vendor_event: purchase, request: track}
`
	md := markdown(t, compile(t, src), "")
	want := []string{
		"| `advertising` | 1 | `context.consent.advertising` | `true` grants, `false` denies; anything else (absent, `null`, text) passes to the next |",
		"| `advertising` | 2 | `context.consent.canonical.marketing` | `true` grants, `false` denies; anything else (absent, `null`, text) passes to the next |",
		"| `advertising` | — | none of the above | consent missing: **denied** (`when_missing: deny`), `skip` / `consent_denied` |",
	}
	if got := tableRows(md, "\n## Consent\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("consent rows:\n%s\nwant:\n%s\nsection:%s", strings.Join(got, "\n"), strings.Join(want, "\n"), section(md, "Consent"))
	}
	md = markdown(t, compile(t, strings.Replace(src, "when_missing: deny", "when_missing: allow", 1)), "")
	if !strings.Contains(section(md, "Consent"), "| `advertising` | — | none of the above | consent missing: **allowed** (`when_missing: allow`) |") {
		t.Errorf("allow: %s", section(md, "Consent"))
	}
}
