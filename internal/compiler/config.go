package compiler

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// CheckConfigValue checks one config value against its field and returns it
// in its canonical Go type: string (string, secret, select), int64
// (integer), float64 (number) or bool (boolean). Text is accepted for every
// type, as a command line gives it ("42", "true"). Errors never contain the
// value of a secret.
func CheckConfigValue(f *ConfigField, v any) (any, error) {
	switch f.Type {
	case ConfigString, ConfigSecret, ConfigSelect:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be text, not %s", describeValue(v))
		}
		if f.Required && s == "" {
			return nil, fmt.Errorf("is required and must not be empty")
		}
		if f.Pattern != nil && s != "" && !f.Pattern.MatchString(s) {
			if f.Secret() {
				return nil, fmt.Errorf("does not have the expected form")
			}
			return nil, fmt.Errorf("%q does not match %s", s, strings.TrimSuffix(strings.TrimPrefix(f.Pattern.String(), "^(?:"), ")$"))
		}
		if f.Type == ConfigSelect && !slices.ContainsFunc(f.Options, func(o SelectOption) bool { return o.Value == s }) {
			var vals []string
			for _, o := range f.Options {
				vals = append(vals, o.Value)
			}
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
		}
		return s, nil
	case ConfigInteger:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
		case string:
			if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return i, nil
			}
		}
		return nil, fmt.Errorf("must be an integer, not %s", describeValue(v))
	case ConfigNumber:
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, nil
			}
		}
		return nil, fmt.Errorf("must be a number, not %s", describeValue(v))
	case ConfigBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("must be true or false, not %s", describeValue(v))
	}
	return nil, fmt.Errorf("unknown config type %s", f.Type)
}

func describeValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "text"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
