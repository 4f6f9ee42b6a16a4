package send

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// ErrCarriesSecret is returned by Items for an event that holds a secret
// config value of its integration: the outbox keeps events as they are,
// and must never hold a secret. Reject such an event (the CLI's send
// counts it as invalid_event).
var ErrCarriesSecret = errors.New("the event carries a secret config value of the integration; it is not stored or sent")

// Items turns a delivered result into outbox items, one per request. The
// ID of an item is stable: the integration name, the event's message id
// (or, without one, the hash of the event bytes) and the request's index;
// the same event enqueued twice is the same item, sent once. An event that
// carries a secret config value gives ErrCarriesSecret and no item.
func Items(in *runtime.Integration, integration, blueprint string, event []byte, res runtime.Result, now time.Time) ([]*outbox.Item, error) {
	if in.CarriesSecret(event) {
		return nil, ErrCarriesSecret
	}
	msgID := gjson.GetBytes(event, "message_id")
	if !msgID.Exists() || msgID.String() == "" {
		msgID = gjson.GetBytes(event, "messageId")
	}
	key := msgID.String()
	if key == "" {
		sum := sha256.Sum256(event)
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	items := make([]*outbox.Item, 0, len(res.Requests))
	for i, req := range res.Requests {
		h := sha256.New()
		h.Write([]byte(integration))
		h.Write([]byte{0})
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(i)))
		id := hex.EncodeToString(h.Sum(nil))[:32]
		items = append(items, &outbox.Item{
			ID:          id,
			Integration: integration,
			Blueprint:   blueprint,
			Variant:     in.Variant(),
			Event:       append([]byte(nil), event...),
			Request:     i,
			MessageID:   in.Redact(msgID.String()),
			VendorEvent: res.VendorEvent,
			Method:      req.Method,
			URL:         in.RedactURL(req, req.URL),
			State:       outbox.Pending,
			CreatedAt:   now,
			NextAt:      now,
			UpdatedAt:   now,
		})
	}
	return items, nil
}
