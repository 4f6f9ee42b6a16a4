package live

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"
)

func quietHub(opts Options) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return NewHub(opts)
}

// noLeak fails the test when, at its end, more goroutines run than at its
// start (after a grace period for those that are ending).
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines at the end, %d at the start:\n%s", n, before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// recv returns the next message of ch, failing the test after a second.
func recv(t *testing.T, ch <-chan Message) Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(time.Second):
		t.Fatal("no message within a second")
	}
	return Message{}
}

// none checks that ch holds no message.
func none(t *testing.T, ch <-chan Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		t.Fatalf("unexpected message %+v (open %t)", m, ok)
	default:
	}
}

func TestHubFanOut(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	a, cancelA := h.Subscribe("")
	defer cancelA()
	b, cancelB := h.Subscribe("")
	defer cancelB()
	if n := h.Subscribers(); n != 2 {
		t.Fatalf("Subscribers() = %d, want 2", n)
	}
	for i := range 3 {
		h.Publish(Message{Type: TypeDecision, EventID: fmt.Sprint("e", i), IntegrationID: fmt.Sprint("int_", i)})
	}
	for _, ch := range []<-chan Message{a, b} {
		for i := range 3 {
			if m := recv(t, ch); m.EventID != fmt.Sprint("e", i) {
				t.Errorf("message %d is %q: the order is lost", i, m.EventID)
			}
		}
		none(t, ch)
	}
}

func TestHubFilter(t *testing.T) {
	h := quietHub(Options{})
	a, cancel := h.Subscribe("int_a")
	defer cancel()
	all, cancelAll := h.Subscribe("")
	defer cancelAll()

	h.Publish(Message{Type: TypeReceived, EventID: "e1"}) // every integration's
	h.Publish(Message{Type: TypeDecision, EventID: "e1", IntegrationID: "int_b"})
	h.Publish(Message{Type: TypeDecision, EventID: "e1", IntegrationID: "int_a"})

	if m := recv(t, a); m.Type != TypeReceived {
		t.Errorf("first message of int_a: %+v, want the received step", m)
	}
	if m := recv(t, a); m.IntegrationID != "int_a" {
		t.Errorf("second message of int_a: %+v, want int_a's decision", m)
	}
	none(t, a)
	for _, want := range []string{"", "int_b", "int_a"} {
		if m := recv(t, all); m.IntegrationID != want {
			t.Errorf("all: got integration %q, want %q", m.IntegrationID, want)
		}
	}
}

func TestHubSlowSubscriber(t *testing.T) {
	h := quietHub(Options{Buffer: 4})
	slow, cancelSlow := h.Subscribe("")
	defer cancelSlow()
	fast, cancelFast := h.Subscribe("")
	defer cancelFast()

	// The fast subscriber reads each message as it comes; the slow one
	// reads nothing. Publish must go on regardless.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			h.Publish(Message{Type: TypeAttempt, EventID: "e", Attempt: i})
			select {
			case m := <-fast:
				if m.Attempt != i {
					t.Errorf("fast subscriber: message %d has attempt %d", i, m.Attempt)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("fast subscriber: message %d did not come", i)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	for i := range 4 {
		if m := recv(t, slow); m.Attempt != i {
			t.Fatalf("slow subscriber: message %d has attempt %d", i, m.Attempt)
		}
	}
	none(t, slow)
	h.Publish(Message{Type: TypeAttempt, EventID: "e", Attempt: 10})
	m := recv(t, slow)
	if m.Type != TypeDropped || m.Message != "6 messages dropped: the page was too slow" || m.At.IsZero() {
		t.Errorf("after a loss: %+v, want the dropped notice for 6 messages", m)
	}
	if m := recv(t, slow); m.Attempt != 10 {
		t.Errorf("after the notice: %+v, want attempt 10", m)
	}
	none(t, slow)
	if m := recv(t, fast); m.Attempt != 10 {
		t.Errorf("fast subscriber: %+v, want attempt 10 and no notice", m)
	}
	if n := h.Dropped(); n != 6 {
		t.Errorf("Dropped() = %d, want 6", n)
	}

	// Caught up: no further notice.
	h.Publish(Message{Type: TypeAttempt, EventID: "e", Attempt: 11})
	if m := recv(t, slow); m.Type != TypeAttempt {
		t.Errorf("caught up: %+v, want the attempt itself", m)
	}
}

// A subscriber whose buffer is full when its notice is due loses the
// message too, and the next notice counts it.
func TestHubDroppedNoticeWaitsForRoom(t *testing.T) {
	h := quietHub(Options{Buffer: 2})
	ch, cancel := h.Subscribe("")
	defer cancel()
	for _, id := range []string{"1", "2", "3", "4"} { // 3 and 4 are lost; no room for a notice either
		h.Publish(Message{Type: TypeReceived, EventID: id})
	}
	recv(t, ch)
	h.Publish(Message{Type: TypeReceived, EventID: "5"}) // the notice takes the room; 5 is lost
	if m := recv(t, ch); m.EventID != "2" {
		t.Errorf("got %+v, want event 2", m)
	}
	if m := recv(t, ch); m.Message != "2 messages dropped: the page was too slow" {
		t.Errorf("got %+v, want the notice of 2", m)
	}
	h.Publish(Message{Type: TypeReceived, EventID: "6"})
	if m := recv(t, ch); m.Message != "1 messages dropped: the page was too slow" {
		t.Errorf("got %+v, want the notice of 1", m)
	}
	if m := recv(t, ch); m.EventID != "6" {
		t.Errorf("got %+v, want event 6", m)
	}
	none(t, ch)
}

func TestHubCancel(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	ch, cancel := h.Subscribe("")
	other, cancelOther := h.Subscribe("")
	defer cancelOther()
	cancel()
	cancel() // twice is fine
	if _, ok := <-ch; ok {
		t.Fatal("the channel is open after cancel")
	}
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("Subscribers() = %d after one cancel, want 1", n)
	}
	h.Publish(Message{Type: TypeReceived, EventID: "e"}) // no send on the closed channel
	recv(t, other)
}

func TestHubClose(t *testing.T) {
	h := quietHub(Options{})
	ch, cancel := h.Subscribe("int_a")
	h.Close()
	h.Close()
	if _, ok := <-ch; ok {
		t.Fatal("the channel is open after Close")
	}
	cancel() // after Close: nothing to do
	late, cancelLate := h.Subscribe("")
	defer cancelLate()
	if _, ok := <-late; ok {
		t.Fatal("a subscription after Close is open")
	}
	h.Publish(Message{Type: TypeReceived})
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after Close", n)
	}
}

func TestHubPublishWithoutSubscribersIsCheap(t *testing.T) {
	h := quietHub(Options{})
	m := Message{Type: TypeDecision, EventID: "e", IntegrationID: "int_a", Fields: []string{"x"}}
	if n := testing.AllocsPerRun(1000, func() { h.Publish(m) }); n != 0 {
		t.Errorf("Publish without subscribers allocates %.1f times", n)
	}
	_, cancel := h.Subscribe("")
	cancel()
	if n := testing.AllocsPerRun(1000, func() { h.Publish(m) }); n != 0 {
		t.Errorf("Publish after the last cancel allocates %.1f times", n)
	}
}

// Publishers, subscribers and cancels at once: the race detector and the
// absence of a panic (send on a closed channel) are the test.
func TestHubConcurrent(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{Buffer: 8})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h.Publish(Message{Type: TypeAttempt, EventID: fmt.Sprint(p, "-", i), IntegrationID: fmt.Sprint("int_", i%3)})
			}
		})
	}
	for s := range 8 {
		wg.Go(func() {
			for range 50 {
				ch, cancel := h.Subscribe(fmt.Sprint("int_", s%4)) // int_3 gets nothing but received steps
				for range 3 {
					select {
					case <-ch:
					case <-time.After(time.Millisecond):
					}
				}
				cancel()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	h.Close()
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := h.Subscribers(); n != 0 {
		t.Errorf("Subscribers() = %d at the end", n)
	}
}

func BenchmarkPublishNoSubscriber(b *testing.B) {
	h := quietHub(Options{})
	m := Message{Type: TypeDecision, EventID: "e", IntegrationID: "int_a"}
	for b.Loop() {
		h.Publish(m)
	}
}

func BenchmarkPublishOneSubscriber(b *testing.B) {
	h := quietHub(Options{})
	ch, cancel := h.Subscribe("")
	defer cancel()
	go func() {
		for range ch {
		}
	}()
	m := Message{Type: TypeDecision, EventID: "e", IntegrationID: "int_a"}
	for b.Loop() {
		h.Publish(m)
	}
}

func TestHubStampsTime(t *testing.T) {
	h := quietHub(Options{})
	ch, cancel := h.Subscribe("")
	defer cancel()
	before := time.Now()
	h.Publish(Message{Type: TypeReceived, EventID: "e"})
	if m := recv(t, ch); m.At.Before(before) || m.At.After(time.Now()) || m.At.Location() != time.UTC {
		t.Errorf("At = %v, want now in UTC", m.At)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h.Publish(Message{Type: TypeReceived, EventID: "e", At: at})
	if m := recv(t, ch); !m.At.Equal(at) {
		t.Errorf("At = %v, want the caller's %v", m.At, at)
	}
}
