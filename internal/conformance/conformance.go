// Package conformance holds what the tests of several packages read from the shared conformance references
// (backends/cpu/testdata/models/MODEL/reference.json, copied from ../shared/conformance): the policy object of a
// reference case and its spec string.
package conformance

import (
	"encoding/json"
	"fmt"
)

// Policy is a reference case's policy object, {"method": "snapstream", "sinks": 4, "recent": 16, ...}: the method
// and the fields it uses (streaming: sinks and recent; snapkv: topk, window and kernel; snapstream: all five).
type Policy struct {
	Method string `json:"method"`
	Sinks  int    `json:"sinks"`
	Recent int    `json:"recent"`
	TopK   int    `json:"topk"`
	Window int    `json:"window"`
	Kernel int    `json:"kernel"`
}

// UnmarshalJSON reads a policy object, refusing a method the references do not use.
func (p *Policy) UnmarshalJSON(b []byte) error {
	type plain Policy
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		return fmt.Errorf("reference policy: %w", err)
	}
	switch q.Method {
	case "full", "streaming", "snapkv", "snapstream":
	default:
		return fmt.Errorf("reference policy: method %q, want full, streaming, snapkv or snapstream", q.Method)
	}
	*p = Policy(q)
	return nil
}

// Spec is the policy as a spec string of package compress.
func (p Policy) Spec() string {
	switch p.Method {
	case "full":
		return "full"
	case "streaming":
		return fmt.Sprintf("streaming:sinks=%d,recent=%d", p.Sinks, p.Recent)
	case "snapkv":
		return fmt.Sprintf("snapkv:topk=%d,window=%d,kernel=%d", p.TopK, p.Window, p.Kernel)
	}
	return fmt.Sprintf("snapstream:sinks=%d,recent=%d,topk=%d,window=%d,kernel=%d", p.Sinks, p.Recent, p.TopK, p.Window, p.Kernel)
}
