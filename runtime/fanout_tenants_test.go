package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// tenantSet is integrations of the catalog as a platform holds them: for
// every blueprint, variant and config its shipped vectors use, the
// vector's own integration and tenants of the same variant whose config
// differs in every key Bind lets differ (ids, secrets, selects, numbers,
// flags, optional keys given), some of them with other limits, budgets or
// clocks. Integrations of one variant share a scan in EvaluateEach and
// must share nothing else.
type tenantSet struct {
	ins []*runtime.Integration
	// texts are the config strings of every tenant (secrets included):
	// written into events, they are redacted for one tenant and not for
	// another.
	texts  []string
	events [][]byte
	// group is each integration's blueprint and variant.
	group map[*runtime.Integration]string
}

// tenantText returns candidates for tenant t's value of a config string
// whose vector value is orig, first of orig's shape (its last letters and
// digits shifted, so that a pattern still holds), then others; the first
// Bind accepts is taken.
func tenantText(orig string, t int) []string {
	var out []string
	// The same shape, other characters: each letter or digit shifted.
	b := []byte(orig)
	for i := len(b) - 1; i >= 0 && i >= len(b)-6; i-- {
		switch ch := b[i]; {
		case ch >= '0' && ch <= '9':
			b[i] = '0' + byte((int(ch-'0')+t+1)%10)
		case ch >= 'a' && ch <= 'z':
			b[i] = 'a' + byte((int(ch-'a')+t+1)%26)
		case ch >= 'A' && ch <= 'Z':
			b[i] = 'A' + byte((int(ch-'A')+t+1)%26)
		}
	}
	out = append(out, string(b))
	out = append(out, orig+fmt.Sprint(t+2), fmt.Sprintf("tenant%dz%s", t+1, orig), fmt.Sprintf("t%dsecretvalue%d", t+1, 7*t+3))
	return out
}

// tenantConfig derives tenant t's config from a vector's: every key it
// can change changed, every optional key it can give given.
func tenantConfig(bp *engine.Blueprint, variant string, base map[string]any, t int) map[string]any {
	cfg := map[string]any{}
	for k, v := range base {
		cfg[k] = v
	}
	binds := func(c map[string]any) bool {
		_, err := runtime.Bind(bp, variant, c)
		return err == nil
	}
	for _, f := range bp.ConfigFields() {
		old, given := cfg[f.Key]
		var cands []any
		switch {
		case len(f.Options) > 0:
			for i := range f.Options {
				cands = append(cands, f.Options[(i+t+1)%len(f.Options)].Value)
			}
		case f.Type == "boolean":
			b, _ := old.(bool)
			if !given {
				b, _ = f.Default.(bool)
			}
			cands = append(cands, !b)
		case f.Type == "integer" || f.Type == "number":
			n := 1.0
			switch x := old.(type) {
			case int:
				n = float64(x)
			case int64:
				n = float64(x)
			case float64:
				n = x
			}
			cands = append(cands, int(n)+t+1, int(n)+1)
		default:
			s, _ := old.(string)
			if !given {
				s, _ = f.Default.(string)
				if s == "" {
					s = f.Placeholder
				}
				if s == "" {
					s = "value"
				}
			}
			for _, c := range tenantText(s, t) {
				cands = append(cands, c)
			}
		}
		for _, c := range cands {
			cfg[f.Key] = c
			if binds(cfg) {
				break
			}
			if given {
				cfg[f.Key] = old
			} else {
				delete(cfg, f.Key)
			}
		}
	}
	return cfg
}

func loadTenants(tb testing.TB, tenants int) *tenantSet {
	tb.Helper()
	r, files := shippedVectors(tb)
	now := time.Date(2026, 11, 24, 10, 15, 30, 0, time.UTC)
	clock := runtime.WithClock(func() time.Time { return now })
	later := runtime.WithClock(func() time.Time { return now.Add(time.Hour + 7*time.Second) })
	ts := &tenantSet{group: map[*runtime.Integration]string{}}
	seen := map[string]bool{}
	perVariant := map[string]int{} // base configs bound per blueprint and variant
	texts := map[string]bool{}
	for _, f := range files {
		bp, err := r.Blueprint(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range f.Cases {
			ts.events = append(ts.events, c.Event)
			variant, config := f.Variant, f.Config
			if c.Variant != "" {
				variant = c.Variant
			}
			if c.HasConfig {
				config = c.Config
			}
			cj, _ := json.Marshal(config)
			key := bp.Ref() + "|" + variant + "|" + string(cj)
			if seen[key] {
				continue
			}
			seen[key] = true
			if _, err := runtime.Bind(bp, variant, config, clock); err != nil {
				continue
			}
			// Two configs of a variant's vectors (a third shares all it
			// could leak), each with its tenants.
			g := bp.Ref() + " " + variant
			if perVariant[g] >= 2 {
				continue
			}
			perVariant[g]++
			first := perVariant[g] == 1
			for t := -1; t < tenants; t++ {
				cfg := config
				if t >= 0 {
					cfg = tenantConfig(bp, variant, config, t)
				}
				opts := [][]runtime.Option{{clock}}
				if t == 0 && first {
					// Tenant 0 also in every limit and clock Valid does not
					// settle, or settles otherwise.
					opts = append(opts,
						[]runtime.Option{later},
						[]runtime.Option{clock, runtime.WithMaxDepth(4)},
						[]runtime.Option{clock, runtime.WithMaxDepth(200)},
						[]runtime.Option{clock, runtime.WithMaxEventSize(350)},
						[]runtime.Option{clock, runtime.WithMaxEventSize(1 << 21)},
						[]runtime.Option{clock, runtime.WithExprBudget(300, 40)},
					)
				}
				for _, o := range opts {
					in, err := runtime.Bind(bp, variant, cfg, o...)
					if err != nil {
						tb.Fatalf("%s %s tenant %d: %v", bp.Ref(), variant, t, err)
					}
					ts.ins = append(ts.ins, in)
					ts.group[in] = bp.Ref() + " " + variant
				}
				for _, v := range cfg {
					if s, ok := v.(string); ok && len(s) >= 4 {
						texts[s] = true
					}
				}
			}
		}
	}
	for s := range texts {
		ts.texts = append(ts.texts, s)
	}
	slices.Sort(ts.texts)
	return ts
}

// withTexts returns event with some of its string values (and its name)
// replaced by config texts of tenants, chosen by rng: a secret of one
// tenant is then in the event, which that tenant's messages and bodies
// redact and the others' do not.
func withTexts(event []byte, texts []string, rng *rand.Rand) []byte {
	d := json.NewDecoder(bytes.NewReader(event))
	d.UseNumber()
	var x any
	if d.Decode(&x) != nil {
		return nil
	}
	if _, ok := x.(map[string]any); !ok {
		return nil
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "event" && rng.IntN(3) != 0 {
					continue // mostly still mapped
				}
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			switch rng.IntN(4) {
			case 0:
				return texts[rng.IntN(len(texts))]
			case 1:
				return v + " " + texts[rng.IntN(len(texts))]
			}
		}
		return v
	}
	out, err := json.Marshal(walk(x))
	if err != nil {
		return nil
	}
	return out
}

// sameTenantResult fails unless got is want in every field and in every view.
func sameTenantResult(t *testing.T, what string, in *runtime.Integration, event []byte, want, got runtime.Result) {
	t.Helper()
	if reflect.DeepEqual(want, got) && want.String() == got.String() {
		wj, _ := want.MarshalJSON()
		gj, _ := got.MarshalJSON()
		if bytes.Equal(wj, gj) {
			same := true
			for i := range want.Requests {
				if !reflect.DeepEqual(in.Redacted(want.Requests[i]), in.Redacted(got.Requests[i])) {
					same = false
				}
			}
			if same {
				return
			}
		}
	}
	t.Fatalf("%s: integration %s %s, event %.600q:\nalone: %+v\nfanned: %+v", what, in.Blueprint().Ref(), in.Variant(), event, robustSnap(want), robustSnap(got))
}

// TestEvaluateEachTenants is the fan-out's differential test over tenants
// whose configs differ everywhere Bind lets them: for the shipped events,
// and for them with tenants' config texts (secrets included) written into
// their values, EvaluateEach over every tenant of every blueprint (each
// twice, shuffled) gives for each exactly what it gives alone, with
// Evaluate as with EvaluateValid. It also proves the tenants do differ:
// the fan-out would leak if it reused one tenant's body for another.
func TestEvaluateEachTenants(t *testing.T) {
	ts := loadTenants(t, 3)
	rng := rand.New(rand.NewPCG(1, 15))
	events := ts.events
	for _, s := range fanoutSeeds {
		events = append(events, []byte(s))
	}
	// Every other event as shipped (TestEvaluateEach has them all), and
	// each with tenants' texts written into it.
	var sample [][]byte
	for i, ev := range events {
		if i%2 == 0 {
			sample = append(sample, ev)
		}
		if x := withTexts(ev, ts.texts, rng); x != nil {
			sample = append(sample, x)
		}
	}
	events = sample
	if testing.Short() || raceEnabled {
		events = events[:len(events)/4]
	}
	all := append(slices.Clone(ts.ins), ts.ins...)
	checked, delivered := 0, 0
	differ := map[string]bool{} // groups whose tenants delivered different requests for one event
	var dst []runtime.Result
	for _, ev := range events {
		v, err := runtime.Valid(ev)
		if err != nil {
			continue
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		dst = runtime.EvaluateEach(dst[:0], v, all)
		if len(dst) != len(all) {
			t.Fatalf("%d results for %d integrations", len(dst), len(all))
		}
		alone := map[*runtime.Integration]runtime.Result{}
		for i, in := range all {
			w, ok := alone[in]
			if !ok {
				w = in.Evaluate(ev)
				sameTenantResult(t, "EvaluateValid", in, ev, w, in.EvaluateValid(v))
				alone[in] = w
			}
			sameTenantResult(t, "EvaluateEach", in, ev, w, dst[i])
		}
		// Tenants of one variant that deliver differ in what they send.
		bodies := map[string]string{}
		for in, w := range alone {
			if w.Outcome != runtime.Deliver {
				continue
			}
			delivered++
			g := ts.group[in]
			var b strings.Builder
			for _, q := range w.Requests {
				fmt.Fprintf(&b, "%s %s %v %s\n", q.Method, q.URL, q.Headers, q.Body)
			}
			if prev, ok := bodies[g]; ok && prev != b.String() {
				differ[g] = true
			}
			bodies[g] = b.String()
		}
		checked++
	}
	if checked < 200 || delivered < 5000 {
		t.Fatalf("only %d events checked, %d deliveries", checked, delivered)
	}
	if len(differ) < 8 {
		t.Fatalf("tenants of only %d variants delivered different requests for one event: %v", len(differ), differ)
	}
	t.Logf("%d integrations, %d events, %d deliveries, %d variants whose tenants differ", len(ts.ins), checked, delivered, len(differ))
}

// TestEvaluateEachTenantsConcurrent runs fan-outs of one event set over
// shared integrations from several goroutines (go test -race): each gets
// what the integrations give alone.
func TestEvaluateEachTenantsConcurrent(t *testing.T) {
	ts := loadTenants(t, 2)
	rng := rand.New(rand.NewPCG(2, 15))
	var events []runtime.ValidEvent
	var raws [][]byte
	for i, ev := range ts.events {
		if i%5 != 0 {
			continue
		}
		if x := withTexts(ev, ts.texts, rng); x != nil {
			ev = x
		}
		if v, err := runtime.Valid(ev); err == nil {
			events, raws = append(events, v), append(raws, ev)
		}
	}
	want := make([]map[*runtime.Integration]runtime.Result, len(events))
	for i, v := range events {
		want[i] = map[*runtime.Integration]runtime.Result{}
		for _, in := range ts.ins {
			want[i][in] = in.EvaluateValid(v)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		// Each goroutine its own order of the shared integrations.
		ins := slices.Clone(ts.ins)
		rand.New(rand.NewPCG(uint64(g), 15)).Shuffle(len(ins), func(i, j int) { ins[i], ins[j] = ins[j], ins[i] })
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []runtime.Result
			for k := range events {
				i := (k + g*7) % len(events)
				dst = runtime.EvaluateEach(dst[:0], events[i], ins)
				for j, in := range ins {
					if w := want[i][in]; !reflect.DeepEqual(w, dst[j]) {
						errs <- fmt.Sprintf("goroutine %d, %s %s, event %.300q:\nalone: %+v\nfanned: %+v", g, in.Blueprint().Ref(), in.Variant(), raws[i], robustSnap(w), robustSnap(dst[j]))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// configEverywhere reads its config wherever a blueprint may: shared
// values (a currency default, an expression, a fallback), the URL, headers
// and auth, body fields (secret ones too), a when, expressions of items,
// a filter, warnings, the consent category, the method and a computed
// vendor event. Tenants of one variant share its scan and nothing else.
const configEverywhere = `key: tenants
version: 1.0.0
name: Tenants
category: other
status: alpha
config:
  region: {type: string, required: true, pattern: '^[a-z]{2}[0-9]?$'}
  account: {type: string, required: true}
  token: {type: secret, required: true}
  currency: {type: string, default: USD}
  threshold: {type: integer, default: 10}
  tag_items: {type: boolean, default: false}
  mode:
    type: select
    options: [{value: live}, {value: test}]
    default: live
  verb:
    type: select
    options: [{value: POST}, {value: PUT}]
    default: POST
  cat:
    type: select
    options: [{value: none}, {value: advertising}, {value: analytics}]
    default: none
hosts: [api.example.com, "*.example.com"]
consent:
  category: "{config.cat}"
  none: none
  from: ["context.consent.{category}"]
warnings:
  big_order: Over the tenant's threshold.
  test_mode: Sent in test mode.
  no_label: No label.
values:
  cur:
    from: [properties.currency, {config: currency}]
    type: currency
  acct:
    expr: 'config.account + "-" + string(event.properties.order_id ?? "none")'
    type: string
  label:
    from: [properties.label, {config: account}]
    type: string
requests:
  r:
    method: "{config.verb}"
    url: https://{config.region}.example.com/v1/{values.acct}?mode={config.mode}&l={values.label?}
    headers:
      Content-Type: application/json
      X-Account: "{values.acct}"
      X-Key: {value: "k={config.token}", secret: true}
    auth: {type: bearer, token: "{config.token}"}
    body:
      account: {config: account}
      key: {config: token, secret: true}
      order: {from: properties.order_id, type: id, required: true}
      label: {value: label, warn_if_absent: no_label}
      total: {from: properties.total, type: money, currency: cur}
      dec: {from: properties.total, type: decimal, currency: cur}
      big: {expr: '(event.properties.total ?? 0) > config.threshold', type: boolean}
      test_only: {from: properties.order_id, when: 'config.mode == "test"'}
      lines:
        from: properties.products
        type: array
        items:
          sku: {from: sku, type: string, required: true}
          price: {from: price, type: money, currency: cur}
          tag: {expr: 'config.tag_items ? config.account + "/" + string(item.sku ?? "") : nil'}
          total: {expr: 'fields.price * (item.quantity ?? 1)', type: integer}
events:
  Order Completed:
    vendor_event: purchase
    request: r
    filter: '(event.properties.total ?? 0) >= 0 && config.region != "zz"'
    warn_when:
      big_order: '(event.properties.total ?? 0) > config.threshold'
      test_mode: 'config.mode == "test"'
variants:
  default:
    name: Default
    description: Orders.
  all:
    name: All
    description: Orders, and every other event by name.
    events:
      "*":
        vendor_event: {expr: 'config.account + "_" + (values.source_event ?? "x")'}
        request: r
`

// TestEvaluateEachConfigEverywhere: tenants of configEverywhere, whose
// configs differ in every key, fanned out together (each twice, with
// limits and budgets of their own, shuffled) get for every event what
// each gets alone, though nearly every byte of their results differs:
// values, URL, headers, body, secret ranges, warnings, faults, filters,
// consent, the redaction of their own secrets in the event.
func TestEvaluateEachConfigEverywhere(t *testing.T) {
	bp, ds := engine.Compile("tenants.yaml", []byte(configEverywhere))
	if bp == nil {
		t.Fatal(ds)
	}
	now := time.Date(2026, 11, 24, 10, 15, 30, 0, time.UTC)
	clock := runtime.WithClock(func() time.Time { return now })
	configs := []map[string]any{
		{"region": "eu", "account": "acme", "token": "tok-acme-secret"},
		{"region": "us1", "account": "globex", "token": "tok-globex-secret", "currency": "JPY", "threshold": 1000, "tag_items": true, "mode": "test", "verb": "PUT", "cat": "advertising"},
		{"region": "zz", "account": "initech", "token": "tok-initech-secret", "cat": "analytics"},
		{"region": "ap", "account": "umbrella", "token": "tok-umbrella-secret", "currency": "KWD", "threshold": 0, "tag_items": true, "cat": "advertising"},
	}
	var ins []*runtime.Integration
	for _, variant := range []string{"default", "all"} {
		for i, cfg := range configs {
			opts := [][]runtime.Option{{clock}}
			if i == 1 {
				opts = append(opts,
					[]runtime.Option{clock, runtime.WithMaxDepth(4)},
					[]runtime.Option{clock, runtime.WithMaxEventSize(300)},
					[]runtime.Option{clock, runtime.WithExprBudget(200, 30)},
				)
			}
			for _, o := range opts {
				in, err := runtime.Bind(bp, variant, cfg, o...)
				if err != nil {
					t.Fatal(err)
				}
				ins = append(ins, in)
			}
		}
	}
	var events []string
	for _, name := range []string{"Order Completed", "Other", "tok-acme-secret", "tok-globex-secret done", ""} {
		for _, props := range []string{
			`{"order_id":"o-1","total":25.5,"products":[{"sku":"s-1","price":2.5,"quantity":2},{"sku":"tok-umbrella-secret","price":1}]}`,
			`{"order_id":"tok-acme-secret","total":1.005,"currency":"usd","label":"tok-globex-secret","products":[{"sku":"a"},{"price":"x"},3]}`,
			`{"total":-1,"currency":"toolong"}`,
			`{"order_id":"o-2","total":5000,"products":[]}`,
			`{"order_id":12,"total":"12.345","products":[{"sku":"s","price":1,"quantity":3}],"pad":[[[[[1]]]]]}`,
		} {
			for _, consent := range []string{``, `,"context":{"consent":{"advertising":true,"analytics":false}}`, `,"context":{"consent":{"advertising":false,"analytics":true}}`} {
				events = append(events, `{"type":"track","event":`+strconv.Quote(name)+`,"properties":`+props+consent+`}`)
			}
		}
	}
	events = append(events,
		`{"type":"page","name":"tok-initech-secret","properties":{"order_id":"o"}}`,
		`{"type":"track","event":"Order Completed","event":"x","properties":{"order_id":"o"}}`,
		`{"type":"track","event":"Order Completed","properties":{"order_id":"o","order_id":"tok-acme-secret"}}`,
	)
	rng := rand.New(rand.NewPCG(7, 15))
	all := append(slices.Clone(ins), ins...)
	differ := 0 // events for which tenants delivered different requests
	for _, ev := range events {
		v, err := runtime.Valid([]byte(ev))
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		delivered := map[string]bool{}
		for range 3 {
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			got := runtime.EvaluateEach(nil, v, all)
			for i, in := range all {
				w := in.Evaluate([]byte(ev))
				sameTenantResult(t, "EvaluateEach", in, []byte(ev), w, got[i])
				if w.Outcome == runtime.Deliver {
					delivered[w.String()] = true
				}
			}
		}
		if len(delivered) >= 2 {
			differ++
		}
	}
	if differ < 15 {
		t.Fatalf("tenants delivered different requests for only %d of %d events: too alike to show a leak", differ, len(events))
	}
}
