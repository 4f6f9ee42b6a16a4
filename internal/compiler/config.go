package compiler

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/blueprint-engine/blueprint/internal/netguard"
)

// CheckConfigValue checks one config value against its field and returns it
// in its canonical Go type: string (string, secret, select), int64
// (integer), float64 (number) or bool (boolean). Text is accepted for every
// type, as a command line gives it ("42", "true"). Errors never contain the
// value of a secret.
func CheckConfigValue(f *ConfigField, v any) (any, error) {
	return CheckConfigValueAllowing(f, v, false)
}

// CheckConfigValueAllowing is CheckConfigValue for an operator who allows
// private receivers (--allow-private-addresses): with allowPrivate, a url
// whose host is a private, loopback or link-local IP literal is accepted,
// as the sender then lets a connection reach such an address (vendors.md:
// refused "unless the operator allows it").
func CheckConfigValueAllowing(f *ConfigField, v any, allowPrivate bool) (any, error) {
	val, err := checkConfigType(f, v, allowPrivate)
	if err != nil {
		return nil, err
	}
	var n float64
	switch x := val.(type) {
	case int64:
		n = float64(x)
	case float64:
		n = x
	default:
		return val, nil
	}
	switch {
	case f.Min != nil && n < *f.Min:
		return nil, fmt.Errorf("%v is below the minimum %v", val, *f.Min)
	case f.Max != nil && n > *f.Max:
		return nil, fmt.Errorf("%v is above the maximum %v", val, *f.Max)
	}
	return val, nil
}

func checkConfigType(f *ConfigField, v any, allowPrivate bool) (any, error) {
	switch f.Type {
	case ConfigURL:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be an https URL, not %s", describeValue(v))
		}
		if msg := urlProblem(s, allowPrivate); msg != "" {
			return nil, errors.New(msg)
		}
		return s, nil
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
			if !math.IsInf(x, 0) && !math.IsNaN(x) { // YAML's .nan and .inf, or a Go caller's
				return x, nil
			}
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

// MaxURLLen is the longest url config value accepted.
const MaxURLLen = 2048

// urlProblem says why a url config value is refused, or "": it must be an
// absolute https URL (scheme compared case-insensitively) of at most 2048
// characters, with a host, no user information and no fragment, and a host
// written as an IP address must not be private, loopback or link-local
// (names are checked when they are resolved, at every connection), unless
// allowPrivate: the operator allows private receivers.
func urlProblem(s string, allowPrivate bool) string {
	if len(s) > MaxURLLen {
		return fmt.Sprintf("is longer than %d characters", MaxURLLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case !strings.EqualFold(u.Scheme, "https"):
		return "must start with https://"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not carry user information (user:password@)"
	case strings.Contains(s, "#"):
		return "must not have a fragment (#...)"
	case u.Opaque != "":
		return "is not an absolute URL"
	case u.Port() != "" && !validPort(u.Port()):
		return "has a port outside 1 to 65535"
	case !allowPrivate && netguard.RefusedHost(u.Hostname()):
		return "is a private, loopback or link-local address"
	case !hostChars(u.Hostname()):
		// A * would be read by the host allow-list as a wildcard.
		return "has a host that is not a host name (letters, digits, '-' and '.')"
	case numericHost(u.Hostname()):
		// 2130706433, 0x7f.1, 127.1, 127.0.0.1.: resolvers that follow
		// inet_aton (and browsers) read them as IPv4 addresses, which
		// the check above would not see.
		return "writes an IP address in a form other than A.B.C.D (or it is not a host name)"
	}
	return ""
}

// hostChars reports whether host is an IP literal or made of what a
// host name may hold: letters, digits, '-', '.', '_' (some DNS names have
// it) and any non-ASCII character (IDN).
func hostChars(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// numericHost reports whether host is not an IP literal netip reads but
// ends in a label that is a number (decimal, or hex with 0x), as the
// WHATWG URL standard says an IPv4 host does: no DNS name ends so (a
// top-level domain is never numeric), and inet_aton reads such hosts as
// addresses in decimal, octal or hex, with fewer than four parts.
func numericHost(host string) bool {
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return false // a literal, checked above
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		last = h
		for _, c := range h {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	if last == "" {
		return false
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// URLHost returns the lower-case host of a url config value.
func URLHost(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
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
