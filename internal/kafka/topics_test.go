package kafka

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEnsureTopicsNotAllowedToCreate: on managed Kafka whose operators
// create the topics, CreateTopics answers TOPIC_AUTHORIZATION_FAILED (or
// CLUSTER_) for every topic, existing or not. The topics that exist are
// used as they are ("kadm to create topics where allowed"), as
// EnsureIntegrationsTopic does; a missing one is an error naming it.
// Before, any refusal stopped serve at start, topics made or not.
func TestEnsureTopicsNotAllowedToCreate(t *testing.T) {
	cfg, c := fakeCluster(t, 1, intID) // the operators' topics
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var code atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.CreateTopicsRequest)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = int16(code.Load())
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	for _, e := range []*kerr.Error{kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed} {
		code.Store(int32(e.Code))
		if err := EnsureTopics(ctx, cfg, 1, intID); err != nil {
			t.Errorf("%s, every topic made: %v", e.Message, err)
		}
		err := EnsureTopics(ctx, cfg, 1, intID, "int_new")
		if err == nil || !strings.Contains(err.Error(), "topic delivery-int_new does not exist and could not be created") {
			t.Errorf("%s, delivery-int_new missing: %v", e.Message, err)
		}
	}
}
