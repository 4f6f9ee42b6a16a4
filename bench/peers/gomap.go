// Package peers holds what users would write instead of a blueprint, to
// measure the engine against: here, a hand-written Go mapping of a Button
// purchase with encoding/json (unmarshal into maps, build, marshal), doing
// the same rules as the blueprint for the common case.
package peers

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"time"
)

// ButtonPurchase maps an Order Completed event to Button's order body and
// Authorization header, the way a careful engineer would by hand.
func ButtonPurchase(event []byte, apiKey string) (body []byte, auth string, err error) {
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, "", err
	}
	props, _ := ev["properties"].(map[string]any)
	ctx, _ := ev["context"].(map[string]any)
	consent, _ := ctx["consent"].(map[string]any)
	if granted, _ := consent["advertising"].(bool); !granted {
		return nil, "", errors.New("consent_denied")
	}
	currency := strings.ToUpper(str(props["currency"]))
	exp := 2
	switch currency {
	case "JPY", "KRW":
		exp = 0
	case "KWD", "BHD":
		exp = 3
	}
	out := map[string]any{"order_id": str(props["order_id"]), "currency": currency}
	for _, k := range []string{"subtotal", "revenue", "total"} {
		if v, ok := props[k]; ok {
			out["total"] = minor(v, exp)
			break
		}
	}
	ts, err := time.Parse(time.RFC3339Nano, str(ev["timestamp"]))
	if err != nil {
		return nil, "", err
	}
	out["purchase_date"] = ts.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
	clicks, _ := ctx["click_ids"].(map[string]any)
	if t := str(clicks["btn_ref"]); t != "" {
		out["btn_ref"] = t
	}
	if uid := str(ev["user_id"]); uid != "" {
		c := map[string]any{"id": uid}
		traits, _ := ev["traits"].(map[string]any)
		if e := str(traits["email"]); e != "" {
			sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(e))))
			c["email_sha256"] = hex.EncodeToString(sum[:])
		}
		out["customer"] = c
	}
	var items []any
	products, _ := props["products"].([]any)
	for _, p := range products {
		p, _ := p.(map[string]any)
		qty := int64(1)
		if q, ok := p["quantity"].(float64); ok {
			qty = int64(q)
		}
		amount := minor(p["price"], exp)
		it := map[string]any{"identifier": str(p["product_id"]), "quantity": qty, "amount": amount, "total": amount * qty}
		if v := str(p["name"]); v != "" {
			it["description"] = v
		}
		if v := str(p["sku"]); v != "" {
			it["sku"] = v
		}
		if v := str(p["category"]); v != "" {
			it["category"] = []string{v}
		}
		attrs := map[string]any{}
		for _, k := range []string{"brand", "variant"} {
			if v := str(p[k]); v != "" {
				attrs[k] = v
			}
		}
		if len(attrs) > 0 {
			it["attributes"] = attrs
		}
		items = append(items, it)
	}
	out["line_items"] = items
	body, err = json.Marshal(out)
	return body, "Basic " + base64.StdEncoding.EncodeToString([]byte(apiKey+":")), err
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// minor converts through the decimal text of the float, as a careful hand
// mapping would (big.Rat to avoid float rounding).
func minor(v any, exp int) int64 {
	f, _ := v.(float64)
	r, _ := new(big.Rat).SetString(big.NewFloat(f).Text('f', -1))
	r.Mul(r, new(big.Rat).SetInt64(pow10(exp)))
	n, _ := new(big.Float).SetRat(r).Int64()
	// half away from zero
	frac := new(big.Rat).Sub(r, new(big.Rat).SetInt64(n))
	if frac.Cmp(big.NewRat(1, 2)) >= 0 {
		n++
	}
	return n
}

func pow10(e int) int64 {
	p := int64(1)
	for range e {
		p *= 10
	}
	return p
}
