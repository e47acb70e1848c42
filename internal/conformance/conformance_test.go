package conformance

import (
	"encoding/json"
	"testing"
)

func TestPolicySpec(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"method": "full"}`, "full"},
		{`{"method": "streaming", "sinks": 4, "recent": 32}`, "streaming:sinks=4,recent=32"},
		{`{"method": "snapkv", "topk": 48, "window": 16, "kernel": 5}`, "snapkv:topk=48,window=16,kernel=5"},
		{`{"method": "snapstream", "sinks": 2, "recent": 8, "topk": 40, "window": 16, "kernel": 7}`,
			"snapstream:sinks=2,recent=8,topk=40,window=16,kernel=7"},
	} {
		var p Policy
		if err := json.Unmarshal([]byte(c.in), &p); err != nil {
			t.Fatal(err)
		}
		if got := p.Spec(); got != c.want {
			t.Errorf("%s: %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`{"method": "h2o"}`, `{}`, `{"method": "full", "sinks": "4"}`, `[]`} {
		var p Policy
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
