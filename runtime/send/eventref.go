package send

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/tidwall/gjson"
)

// EventRef names an event for a live view: its messageId (else its
// message_id) when that is a non-empty string of at most 128 bytes, else
// "sha256:" and the first 16 hex digits of the SHA-256 of its bytes. Every
// step of one event gets the same name wherever it is computed (the
// ingestion, the processor, a deliverer in another process), so that a
// view can group them. It is the event's own text: scrub it before showing
// it.
func EventRef(event []byte) string {
	for _, k := range []string{"messageId", "message_id"} {
		if v := gjson.GetBytes(event, k); v.Type == gjson.String && v.Str != "" && len(v.Str) <= 128 {
			return v.Str
		}
	}
	sum := sha256.Sum256(event)
	return "sha256:" + hex.EncodeToString(sum[:8])
}
