// Package netguard decides which network addresses a request to a URL
// taken from an integration's config may reach: not a private, loopback,
// link-local, shared (CGNAT), multicast, reserved or unspecified address
// (nor their IPv4-mapped or IPv4-embedding IPv6 forms),
// so that a customer-owned URL cannot point delivery at the operator's own
// network. The check runs on the URL's host when it is installed (an IP
// literal) and on every address a connection uses, after DNS, so that a
// name cannot be re-pointed after install.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// refused are the ranges a customer-owned URL may not reach.
var refused = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("169.254.0.0/16"), // link-local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("0.0.0.0/8"),      // unspecified, "this network"
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (carrier-grade NAT; cloud-internal, e.g. 100.100.100.200 metadata)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking networks
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and the broadcast address
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// Refused reports whether a may not be reached.
func Refused(a netip.Addr) bool {
	// ::ffff:10.0.0.1 is 10.0.0.1, and ::1%lo is ::1: a prefix never
	// contains an address with a zone, which a dialler still reaches.
	a = a.WithZone("").Unmap()
	for _, p := range refused {
		if p.Contains(a) {
			return true
		}
	}
	// IPv6 forms that carry an IPv4 address a network may route to: NAT64
	// (64:ff9b::10.0.0.1, which a NAT64 gateway translates), 6to4
	// (2002:0a00:0001::) and the deprecated IPv4-compatible ::10.0.0.1.
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a), ipv4Compatible.Contains(a):
			return Refused(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return Refused(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

var (
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	ipv4Compatible = netip.MustParsePrefix("::/96")
)

// RefusedHost reports whether a URL host (without port) is an IP literal
// that may not be reached. Names are checked when they are resolved.
func RefusedHost(host string) bool {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	a, err := netip.ParseAddr(host)
	return err == nil && Refused(a)
}

// Error is the refusal of an address at connection time.
type Error struct{ Addr string }

func (e *Error) Error() string {
	return fmt.Sprintf("resolves to a private, loopback or link-local address (%s); refused", e.Addr)
}

// Control is a net.Dialer Control function that refuses a connection to a
// refused address: it runs after DNS, on the address actually dialled.
func Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if a, err := netip.ParseAddr(host); err == nil && Refused(a) {
		return &Error{Addr: a.WithZone("").Unmap().String()}
	}
	return nil
}

// DialContext dials with Control, for an http.Transport.
func DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = Control
	return guarded.DialContext
}
