package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
)

const testPass = "s3cret-Pa55word"

// TestSCRAMAgainstKfake: clients authenticate with SCRAM-SHA-256,
// SCRAM-SHA-512 and PLAIN against a kfake cluster that requires SASL, produce and
// consume; a wrong password is an *AuthError within seconds (not the
// start deadline), naming the mechanism, the user and the broker, never
// the password.
func TestSCRAMAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(SASLScramSHA256, "bp", testPass), kfake.Superuser(SASLScramSHA512, "bp512", testPass),
		kfake.Superuser(SASLPlain, "bpplain", testPass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct{ mech, user string }{{"scram-sha-256", "bp"}, {"SCRAM-SHA-512", "bp512"}, {"plain", "bpplain"}} {
		s, err := NewSASL(tc.mech, tc.user, testPass)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Brokers: c.ListenAddrs(), Security: &Security{SASL: s}}
		if err := EnsureTopics(ctx, cfg, 1); err != nil {
			t.Fatalf("%s: %v", tc.mech, err)
		}
		ing, err := NewIngester(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := ing.Ingest(ctx, []byte(`{"messageId":"m-`+tc.user+`"}`)); err != nil {
			t.Fatalf("%s: ingest: %v", tc.mech, err)
		}
		ing.Close()
	}

	var logs bytes.Buffer
	s, _ := NewSASL("scram-sha-256", "bp", "not-the-password")
	sec := &Security{SASL: s, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	t0 := time.Now()
	err = EnsureTopics(ctx, Config{Brokers: c.ListenAddrs(), Security: sec}, 1)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("wrong password: %v, want an *AuthError", err)
	}
	t.Log(err)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	for _, want := range []string{"refused SASL SCRAM-SHA-256 authentication", `user "bp"`, c.ListenAddrs()[0], "password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, out := range []string{err.Error(), logs.String(), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprintf("%+v %#v", sec, sec)} {
		if strings.Contains(out, "not-the-password") || strings.Contains(out, testPass) {
			t.Errorf("password printed: %s", out)
		}
	}
	if !strings.Contains(logs.String(), "authentication refused") {
		t.Errorf("the refusal was not logged: %q", logs.String())
	}

	// PLAIN's one round trip refused is named the same way.
	s, _ = NewSASL("plain", "bpplain", "not-the-password")
	err = EnsureTopics(ctx, Config{Brokers: c.ListenAddrs(), Security: &Security{SASL: s}}, 1)
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), `refused SASL PLAIN authentication as user "bpplain"`) || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("wrong PLAIN password: %v, want an *AuthError naming PLAIN and the user", err)
	}
}

func TestNewSASL(t *testing.T) {
	for _, tc := range []struct{ mech, user, pass, want string }{
		{"gssapi", "u", "p", `"gssapi"`},
		{"plain", "", "p", "no user"},
		{"plain", "u", "", "empty password"},
	} {
		if _, err := NewSASL(tc.mech, tc.user, tc.pass); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSASL(%q, %q): %v, want %q", tc.mech, tc.user, err, tc.want)
		}
	}
	for _, m := range []string{"plain", "PLAIN", "scram-sha-256", "Scram-Sha-512"} {
		s, err := NewSASL(m, "u", "p")
		if err != nil || s.Mechanism() != strings.ToUpper(m) || s.User() != "u" {
			t.Errorf("NewSASL(%q): %v %v", m, s, err)
		}
	}
}

// TestTLSAgainstKfake: a kfake broker listening with TLS and requiring a
// client certificate (mutual TLS) and SCRAM: the client trusting the
// test CA, with its certificate, a server name and SCRAM creates topics
// and produces; trusting another CA, or without a client certificate, it
// fails with the TLS error in the message.
func TestTLSAgainstKfake(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(p.ServerTLS(true)), kfake.EnableSASL(), kfake.Superuser(SASLScramSHA512, "bp", testPass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s, _ := NewSASL(SASLScramSHA512, "bp", testPass)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	good, err := TLSFiles{CA: p.CA, Cert: p.Cert, Key: p.Key, ServerName: p.ServerName}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Brokers: c.ListenAddrs(), Security: &Security{TLS: good, SASL: s}}
	if err := EnsureTopics(ctx, cfg, 1); err != nil {
		t.Fatalf("TLS + SCRAM: %v", err)
	}
	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Ingest(ctx, []byte(`{"messageId":"m-tls"}`)); err != nil {
		t.Fatalf("ingest over TLS: %v", err)
	}
	ing.Close()
	// The server name defaults to the host dialled: 127.0.0.1, in the
	// certificate's IP addresses.
	noName, _ := TLSFiles{CA: p.CA, Cert: p.Cert, Key: p.Key}.Config()
	if err := EnsureTopics(ctx, Config{Brokers: c.ListenAddrs(), Security: &Security{TLS: noName, SASL: s}}, 1); err != nil {
		t.Fatalf("TLS without a server name: %v", err)
	}

	for name, tc := range map[string]struct {
		files TLSFiles
		want  string
	}{
		"another CA":        {TLSFiles{CA: p.OtherCA, Cert: p.Cert, Key: p.Key}, "certificate"},
		"no client cert":    {TLSFiles{CA: p.CA}, "certificate required"},
		"wrong server name": {TLSFiles{CA: p.CA, Cert: p.Cert, Key: p.Key, ServerName: "other.test"}, "other.test"},
	} {
		t.Run(name, func(t *testing.T) {
			tc2, err := tc.files.Config()
			if err != nil {
				t.Fatal(err)
			}
			sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
			defer scancel()
			err = EnsureTopics(sctx, Config{Brokers: c.ListenAddrs(), Security: &Security{TLS: tc2, SASL: s}}, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestTLSFilesConfig(t *testing.T) {
	p := kafkatest.NewPKI(t)
	c, err := TLSFiles{CA: p.CA, Cert: p.Cert, Key: p.Key, ServerName: "b-1.kafka.example"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "b-1.kafka.example" || c.MinVersion != tls.VersionTLS12 {
		t.Errorf("config: roots %v, %d certificates, server name %q, min version %x", c.RootCAs != nil, len(c.Certificates), c.ServerName, c.MinVersion)
	}
	sys, err := TLSFiles{}.Config()
	if err != nil || sys.RootCAs != nil || len(sys.Certificates) != 0 {
		t.Errorf("system roots: %v %v", sys, err)
	}
	notPEM := filepath.Join(p.Dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		f    TLSFiles
		want string
	}{
		{TLSFiles{CA: filepath.Join(p.Dir, "absent.pem")}, "absent.pem"},
		{TLSFiles{CA: notPEM}, "no PEM certificate"},
		{TLSFiles{Cert: p.Cert}, "without its key"},
		{TLSFiles{Key: p.Key}, "without its certificate"},
		{TLSFiles{Cert: p.Cert, Key: p.CA}, "client certificate"},
	} {
		if _, err := tc.f.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
}

var _ kgo.HookBrokerConnect = (*connWatch)(nil)
