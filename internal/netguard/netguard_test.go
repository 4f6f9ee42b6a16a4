package netguard

import (
	"net/netip"
	"testing"
)

func TestRefused(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.8.9.1": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true,
		"172.32.0.1": false, "192.168.1.1": true, "169.254.169.254": true, "fe80::1": true, "fd00::1": true, "0.0.0.0": true,
		"::": true, "::ffff:10.0.0.1": true, "::ffff:8.8.8.8": false, "8.8.8.8": false, "2606:4700::1111": false, "203.0.113.9": false,
		"64:ff9b::7f00:1": true, "64:ff9b::a9fe:a9fe": true, "64:ff9b::10.1.2.3": true, "64:ff9b::8.8.8.8": false,
		"2002:7f00:1::": true, "2002:a9fe:a9fe::1": true, "2002:808:808::1": false, "::127.0.0.1": true, "::10.0.0.1": true, "::8.8.8.8": false,
		"100.64.0.1": true, "100.100.100.200": true, "100.128.0.1": false, "100.63.255.255": false, "198.18.0.1": true, "224.0.0.1": true, "239.255.255.250": true, "255.255.255.255": true, "240.0.0.1": true, "192.0.0.170": true, "ff02::1": true, "::ffff:100.64.0.1": true,
		"::1%lo": true, "fe80::1%eth0": true, "::ffff:127.0.0.1%lo": true, "fd00::1%1": true, "2606:4700::1111%eth0": false,
	} {
		if got := Refused(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Refused(%s) = %t, want %t", addr, got, want)
		}
	}
	for host, want := range map[string]bool{"[::1]": true, "[::1%lo]": true, "::1%lo": true, "[fe80::1%eth0]": true, "10.0.0.1": true, "example.com": false, "[2606:4700::1111]": false} {
		if got := RefusedHost(host); got != want {
			t.Errorf("RefusedHost(%s) = %t, want %t", host, got, want)
		}
	}
	if err := Control("tcp", "10.0.0.1:443", nil); err == nil || err.Error() != "resolves to a private, loopback or link-local address (10.0.0.1); refused" {
		t.Errorf("Control(10.0.0.1) = %v", err)
	}
	if err := Control("tcp", "[::ffff:127.0.0.1]:443", nil); err == nil {
		t.Error("Control(::ffff:127.0.0.1) passed")
	}
	// A zone does not hide a loopback or link-local address: the dialler
	// reaches it all the same.
	for _, addr := range []string{"[::1%lo]:443", "[fe80::1%eth0]:443"} {
		if err := Control("tcp", addr, nil); err == nil {
			t.Errorf("Control(%s) passed", addr)
		}
	}
	if err := Control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("Control(public) = %v", err)
	}
}
