package reports

import (
	"strings"

	"github.com/snapeval/snapeval/compress"
)

// Split is the slot split of a cache policy, as printed in every report (docs/policies.md §2.2).
type Split struct {
	// Method is "full", "streaming", "snapkv", "snapstream", "knorm", "h2o", "tova", "pyramidkv", "adakv", or whatever
	// precedes ':' in a spec compress cannot parse.
	Method string `json:"method"`
	// Base is the policy under pyramidkv's or adakv's allocation ("snapkv" or "snapstream"; docs/policies.md §20-21).
	Base string `json:"base,omitempty"`
	// Budget is the total slots (snapstream S+K+R, streaming S+R, snapkv K+W); 0 for full.
	Budget   int  `json:"budget"`
	Sinks    int  `json:"sinks"`
	TopK     int  `json:"topk"`
	Recent   int  `json:"recent"`
	Window   int  `json:"window"`
	Kernel   int  `json:"kernel"`
	Adaptive bool `json:"adaptive"`
	// Rerotate is set for streaming and snapstream with positions re-indexed in the cache (docs/policies.md §14).
	Rerotate bool `json:"rerotate,omitempty"`
	// Weights is the weight format a spec asks for ("int8" for "...@int8"; empty: the model's own).
	Weights string `json:"weights,omitempty"`
	// Bits and Group are a quantized cache's bits per element and group size (kvquant; docs/policies.md §17).
	Bits  int `json:"bits,omitempty"`
	Group int `json:"group,omitempty"`
}

// The policy families of the reports' tables and plots, in report order (FamilyOf).
const (
	FamilyFull     = "full"
	FamilyPrefill  = "prefill-time selection"
	FamilyRing     = "ring/streaming"
	FamilyEviction = "decode-time eviction"
	FamilyQuant    = "quantized"
	FamilyOther    = "other"
)

var families = []string{FamilyFull, FamilyPrefill, FamilyRing, FamilyEviction, FamilyQuant, FamilyOther}

// FamilyOf is the family of a policy method: full; prefill-time selection (snapkv, knorm, pyramidkv, adakv);
// ring/streaming (streaming, snapstream); decode-time eviction (h2o, tova, rkv); quantized (kvquant); other for
// any other name (a remote deployment's, say).
func FamilyOf(method string) string {
	switch method {
	case "full":
		return FamilyFull
	case "snapkv", "knorm", "pyramidkv", "adakv":
		return FamilyPrefill
	case "streaming", "snapstream":
		return FamilyRing
	case "h2o", "tova", "rkv":
		return FamilyEviction
	case "kvquant":
		return FamilyQuant
	}
	return FamilyOther
}

// familyRank is the position of a method's family in report order.
func familyRank(method string) int {
	f := FamilyOf(method)
	for i, g := range families {
		if g == f {
			return i
		}
	}
	return len(families)
}

// ParseSplit reads the slot split of a policy spec with compress.Parse. When the spec does not parse (a policy
// declared by a remote deployment, say), the split holds only the method name (the text before ':') and the
// error is returned alongside it.
func ParseSplit(spec string) (Split, error) {
	p, err := compress.Parse(spec)
	if err != nil {
		method, _, _ := strings.Cut(spec, ":")
		return Split{Method: method}, err
	}
	return Split{Method: string(p.Method), Base: string(p.Base), Budget: p.Budget, Sinks: p.Sinks, TopK: p.TopK, Recent: p.Recent,
		Window: p.Window, Kernel: p.Kernel, Adaptive: p.Adaptive, Rerotate: p.Rerotate, Weights: p.Weights,
		Bits: p.Bits, Group: p.Group}, nil
}

// canonical returns the canonical form of a policy spec (itself when it does not parse).
func canonical(spec string) string {
	p, err := compress.Parse(spec)
	if err != nil {
		return spec
	}
	return p.String()
}
