package main

import (
	"strings"
	"testing"
)

// eval binds as send does: a webhook url that is a private IP literal is
// refused unless --allow-private-addresses, as send, dlq replay and serve
// accept it with that flag, so a dry run can reproduce the config.
func TestEvalAllowPrivateAddresses(t *testing.T) {
	ev := `{"type":"track","event":"x","messageId":"m"}`
	out, _, code := cli(t, ev, "eval", "--blueprint", "webhook", "--config", "url=https://10.0.0.5/hook", "-")
	if code != 1 || !strings.Contains(out, "invalid_config [url]") {
		t.Errorf("without the flag: exit %d\n%s", code, out)
	}
	out, errs, code := cli(t, ev, "eval", "--blueprint", "webhook", "--config", "url=https://10.0.0.5/hook", "--allow-private-addresses", "-")
	if code != 0 || !strings.HasPrefix(out, "deliver") || !strings.Contains(out, "POST https://10.0.0.5/hook") {
		t.Errorf("with the flag: exit %d\n%s\n%s", code, out, errs)
	}
}
