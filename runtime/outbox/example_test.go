package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// A sender's life cycle: enqueue before the first attempt, claim what is
// due, store the outcome. Enqueueing the same item again (a re-run over
// the same input) changes nothing.
func ExampleOpenBolt() {
	dir, err := os.MkdirTemp("", "outbox-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	q, err := outbox.OpenBolt(filepath.Join(dir, "state", "outbox.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	item := &outbox.Item{
		ID:          "evt-42/0",
		Integration: "ga4@1.2.0/default",
		Blueprint:   "catalog:ga4@1.2.0",
		Variant:     "default",
		Event:       []byte(`{"event":"purchase","value":42}`),
	}
	stored, err := q.Enqueue(ctx, []*outbox.Item{item})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued:", stored[0].State)

	claimed, err := q.Claim(ctx, time.Now(), 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range claimed {
		// ... send the request rebuilt from it.Event ...
		it.State = outbox.Delivered
		it.Attempts++
		it.LastStatus = 204
		it.UpdatedAt = time.Now()
		if err := q.Update(ctx, it); err != nil {
			log.Fatal(err)
		}
	}

	again, err := q.Enqueue(ctx, []*outbox.Item{item})
	if err != nil {
		log.Fatal(err)
	}
	counts, err := q.Counts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued again:", again[0].State, "event kept:", again[0].Event != nil)
	fmt.Println("pending:", counts[outbox.Pending], "delivered:", counts[outbox.Delivered])
	// Output:
	// enqueued: pending
	// enqueued again: delivered event kept: false
	// pending: 0 delivered: 1
}

// Dead letters are replayed from their stored event.
func ExampleBolt_Replay() {
	dir, err := os.MkdirTemp("", "outbox-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := outbox.OpenBolt(filepath.Join(dir, "outbox.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	if _, err := q.Enqueue(ctx, []*outbox.Item{{ID: "a", Event: []byte(`{}`)}, {ID: "b", Event: []byte(`{}`)}}); err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		err := q.Update(ctx, &outbox.Item{ID: id, State: outbox.Dead, Attempts: 8, LastStatus: 500, LastError: "500 Internal Server Error"})
		if err != nil {
			log.Fatal(err)
		}
	}
	n, err := q.Replay(ctx, nil, time.Now()) // nil: every dead item
	if err != nil {
		log.Fatal(err)
	}
	a, err := q.Get(ctx, "a")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replayed:", n)
	fmt.Println(a.State, a.Attempts, a.LastStatus, a.LastError == "")
	// Output:
	// replayed: 2
	// pending 0 0 true
}
