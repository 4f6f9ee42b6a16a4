package compiler

import "testing"

// TestSnakeCase: words split at separators and at camelCase boundaries,
// lower-cased and joined by one _ (GA4's catch-all event name).
func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"Video Played":                "video_played",
		" Checkout Step-2 Viewed! ":   "checkout_step_2_viewed",
		"videoPlayed":                 "video_played",
		"addedToHTMLCart":             "added_to_html_cart",
		"HTMLPage Shared":             "html_page_shared",
		"step2Done":                   "step2_done",
		"ALLCAPS":                     "allcaps",
		"iPhone Purchased":            "i_phone_purchased",
		"Café Visited":                "caf_visited",
		"already_snake_case":          "already_snake_case",
		"__x__":                       "x",
		"":                            "",
		"!!!":                         "",
		"A":                           "a",
		"aB":                          "a_b",
		"ÀB":                          "b",
		"order Completed\tNow":        "order_completed_now",
		"K\u212a":                     "kk", // the Kelvin sign lower-cases to k
		"Product AddedToCart v2 Beta": "product_added_to_cart_v2_beta",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
