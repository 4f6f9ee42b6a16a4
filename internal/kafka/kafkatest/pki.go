// Package kafkatest has helpers for tests of Kafka mode: a throwaway PKI
// for TLS brokers (kfake.TLS) and clients.
package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a test CA, a broker certificate for 127.0.0.1 and ServerName
// signed by it, and a client certificate, written as PEM files in a
// temporary directory; OtherCA is a CA that signed nothing here.
type PKI struct {
	Dir           string
	CA, Cert, Key string // PEM files: the CA, the client certificate and its key
	OtherCA       string
	ServerName    string
	caPool        *x509.CertPool
	server        tls.Certificate
}

var serial atomic.Int64

// NewPKI makes a PKI valid for an hour.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{Dir: dir, caPool: x509.NewCertPool(), ServerName: "kafka.test"}
	caKey, caCert, caDER := selfSigned(t, "test CA")
	p.caPool.AddCert(caCert)
	p.CA = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	_, _, otherDER := selfSigned(t, "other CA")
	p.OtherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", otherDER)
	sKey, sDER := signed(t, caKey, caCert, "broker", []string{p.ServerName}, []net.IP{net.ParseIP("127.0.0.1")}, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cKey, cDER := signed(t, caKey, caCert, "blueprint", nil, nil, x509.ExtKeyUsageClientAuth)
	p.Cert = writePEM(t, dir, "client.pem", "CERTIFICATE", cDER)
	kb, err := x509.MarshalECPrivateKey(cKey)
	if err != nil {
		t.Fatal(err)
	}
	p.Key = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", kb)
	return p
}

// ServerTLS is the brokers' TLS config (for kfake.TLS); mutual requires
// a client certificate signed by the CA.
func (p *PKI) ServerTLS(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientCAs, c.ClientAuth = p.caPool, tls.RequireAndVerifyClientCert
	}
	return c
}

func selfSigned(t testing.TB, cn string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func signed(t testing.TB, caKey *ecdsa.PrivateKey, ca *x509.Certificate, cn string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dns, IPAddresses: ips,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
