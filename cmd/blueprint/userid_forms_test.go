package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// A numeric user id is forwarded as the same text by every blueprint that
// sends one: its decimal text by value, however the number is written
// (docs/vendors-common.md, shared values). 1.0e3 and 1000.00 are one user,
// "1000"; -0 is "0"; a fraction keeps its digits; an exponent is written out
// exactly, never through a float.
func TestUserIDNumberForms(t *testing.T) {
	forms := map[string]string{
		`1001`:                 "1001",
		`"1001"`:               "1001",
		`1.0e3`:                "1000",
		`1000.00`:              "1000",
		`1E3`:                  "1000",
		`0.1e1`:                "1",
		`-0`:                   "0",
		`-0.0e5`:               "0",
		`-5`:                   "-5",
		`1.5`:                  "1.5",
		`1.50`:                 "1.5",
		`2.5e-1`:               "0.25",
		`1e21`:                 "1000000000000000000000",
		`12345678901234567890`: "12345678901234567890",
		`9007199254740993e0`:   "9007199254740993",
	}
	type vendor struct {
		config []string
		want   func(text string) string // what the output holds
	}
	ctx := `"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","click_ids":{"btn_ref":"srctok-abc"},"page":{"url":"https://shop.example/checkout?irclickid=ic-1&ranSiteID=rs-1&ranLand=20260225_1400"},"consent":{"advertising":true,"analytics":true,"marketing":true}}`
	vendors := map[string]vendor{
		"button":        {[]string{"application_id=app-abc123def456", "api_key=sk-test-123"}, func(s string) string { return `"customer":{"id":"` + s + `"}` }},
		"ga4":           {[]string{"measurement_id=G-ABC123XYZ", "api_secret=gs-secret"}, func(s string) string { return `"user_id":"` + s + `"` }},
		"impact_radius": {[]string{"account_sid=IRabc123XYZ", "auth_token=tok-secret", "program_id=1000", "action_tracker_id=2000"}, func(s string) string { return "CustomerId=" + s + "&" }},
		"rakuten":       {[]string{"mid=3456"}, func(s string) string { return "custid=" + s + "&" }},
		"meta_capi": {[]string{"pixel_id=123456789012345", "access_token=EAAB-secret"}, func(s string) string {
			h := sha256.Sum256([]byte(s))
			return `"external_id":["` + hex.EncodeToString(h[:]) + `"]`
		}},
	}
	for key, v := range vendors {
		for form, text := range forms {
			ev := `{"type":"track","event":"Order Completed","messageId":"m-1","anonymousId":"anon-1","userId":` + form +
				`,"timestamp":"2026-02-25T14:30:00.000Z",` + ctx +
				`,"properties":{"order_id":"o-1","total":30.5,"currency":"USD","products":[{"product_id":"p-1","sku":"S-1","name":"Tee","price":12.75,"quantity":2}]}}`
			args := []string{"eval", "--blueprint", key, "--format", "json", "-"}
			for _, c := range v.config {
				args = append(args, "--config", c)
			}
			out, errs, code := cli(t, ev, args...)
			if code != 0 || !strings.Contains(out, `"outcome":"deliver"`) || !strings.Contains(out, v.want(text)) {
				t.Errorf("%s, userId %s: want %s in\n%s%s", key, form, v.want(text), out, errs)
			}
		}
	}
}

// 'blueprint docs' of every shipped blueprint heads each section with
// text: a mapping whose vendor event is computed (GA4's catch-all) once
// had the heading "## “ (*, every variant)", an empty code span.
func TestDocsHeadingsHaveText(t *testing.T) {
	for _, key := range []string{"awin", "button", "commission_junction", "ga4", "impact_radius", "meta_capi", "rakuten", "webhook"} {
		out, errs, code := cli(t, "", "docs", key)
		if code != 0 {
			t.Fatalf("docs %s: exit %d\n%s", key, code, errs)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "#") && strings.Contains(l, "``") {
				t.Errorf("docs %s: heading %q", key, l)
			}
		}
	}
}
