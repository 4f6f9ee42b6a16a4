package service

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
)

// A management request whose body never comes (slowloris on the login,
// which needs no token) is cut off; and an idle keep-alive connection is
// not kept forever.
func TestAdminSlowBodyIsCutOff(t *testing.T) {
	old := adminBodyTimeout
	adminBodyTimeout = 300 * time.Millisecond
	defer func() { adminBodyTimeout = old }()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{StateDir: t.TempDir(), AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat,
		AdminEmail: "a@example.com", AdminPassword: "change-me-now"})
	if err != nil {
		t.Fatal(err)
	}
	if s.admin.IdleTimeout <= 0 || s.ingest.IdleTimeout <= 0 {
		t.Errorf("idle connections are kept forever: IdleTimeout admin %v ingest %v", s.admin.IdleTimeout, s.ingest.IdleTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", s.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST /v1/admin/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server still waits for a body it was never sent")
		}
	}
}
