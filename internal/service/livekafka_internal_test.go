package service

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/live"
)

// TestEncodeLiveFitsWhatDecodeTakes: whatever a follower's step holds
// (texts past their bounds, characters JSON escapes six bytes each, many
// fields), encodeLive makes a record under kafka.MaxLiveRecordBytes that
// decodeLive accepts, cut on character boundaries; what decodeLive
// refuses, encodeLive never makes.
func TestEncodeLiveFitsWhatDecodeTakes(t *testing.T) {
	ctl := strings.Repeat("\x01", 20000) // \u0001 in JSON: 6 bytes each
	many := make([]string, 100)
	for i := range many {
		many[i] = strings.Repeat("é", 300)
	}
	for name, m := range map[string]live.Message{
		"plain": {Type: live.TypeAttempt, IntegrationID: "int_1", EventID: "m-1", Status: 200, Outcome: "delivered"},
		"long":  {Type: live.TypeRequest, IntegrationID: "int_1", EventID: strings.Repeat("e", 2000), URL: strings.Repeat("u", 20000), Request: strings.Repeat("é", 40000), Message: strings.Repeat("m", 20000)},
		"escaped": {Type: live.TypeDecision, IntegrationID: "int_1", EventID: "m-2", Message: ctl, URL: ctl, Request: ctl, BodyExcerpt: ctl,
			Fields: many, Warnings: many},
	} {
		b, ok := encodeLive(m)
		if !ok {
			t.Errorf("%s: not encoded", name)
			continue
		}
		if len(b) > kafka.MaxLiveRecordBytes || !utf8.Valid(b) {
			t.Errorf("%s: a record of %d bytes (valid UTF-8: %v)", name, len(b), utf8.Valid(b))
		}
		got, err := decodeLive(b)
		if err != nil {
			t.Errorf("%s: the owner refuses what a follower makes: %v", name, err)
			continue
		}
		if got.Type != m.Type || got.IntegrationID != m.IntegrationID || got.Status != m.Status {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if _, ok := encodeLive(live.Message{Type: live.TypeFinal, IntegrationID: "int_1", Item: strings.Repeat("\x02", 100000)}); !ok {
		t.Error("an item of control characters is not clipped to fit")
	}
}
