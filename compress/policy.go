package compress

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/compress/kvquant"
)

// Method names a cache policy.
type Method string

// The cache policies of docs/policies.md §4.
const (
	MethodFull       Method = "full"       // keep everything
	MethodStreaming  Method = "streaming"  // sinks + ring of the most recent tokens (StreamingLLM, original positions)
	MethodSnapKV     Method = "snapkv"     // SnapKV top-K of the prompt + observation window; decoded tokens appended
	MethodSnapStream Method = "snapstream" // sinks + SnapKV top-K of the middle of the prompt + ring
	MethodKNorm      Method = "knorm"      // the B prompt keys of lowest L2 norm per KV head; decoded tokens appended
	MethodKVQuant    Method = "kvquant"    // the full cache, keys and values quantized on write (KIVI-style; §17)
	MethodH2O        Method = "h2o"        // heavy hitters by accumulated attention + a recent window, one eviction per decode step once full
	MethodTOVA       Method = "tova"       // the slot of lowest attention of the current query evicted at every decode step once full
	MethodPyramidKV  Method = "pyramidkv"  // snapkv or snapstream with per-layer top-K budgets decreasing with depth
	MethodAdaKV      Method = "adakv"      // snapkv or snapstream with per-head top-K budgets from the layer's pooled scores
)

// Defaults of the per-layer and per-head allocations (docs/policies.md §20-21).
const (
	DefaultBeta      = 20 // PyramidKV's beta: the last layer gets about topk/beta top-K slots
	DefaultSafeguard = 20 // AdaKV's safeguard, percent: every head keeps at least this share of the layer's mean top-K
)

// Defaults of docs/policies.md §3 [choice].
const (
	DefaultSinks  = 4  // S
	DefaultWindow = 32 // W, observation window
	DefaultKernel = 5  // k, average-pooling kernel
)

// maxValue bounds every integer parameter so that sums and products of them never overflow
// and positions fit the int32 slot arrays.
const maxValue = math.MaxInt32

// Policy is one cache policy with every parameter resolved.
//
// Fields that a method does not use are zero: full uses none; streaming uses Sinks and Recent;
// snapkv uses TopK, Window and Kernel; snapstream uses all of them. Budget is the total number of
// slots: S+K+R for snapstream, S+R for streaming, K+W for snapkv (decoded tokens come on top), 0 for full.
// Adaptive (snapstream only) gives the unused top-K slots of a short prompt to the ring.
// h2o uses TopK (heavy hitters H), Recent (R, the current token included) and Budget = H + R; tova only
// Budget; pyramidkv and adakv carry the fields of their Base (snapkv or snapstream) plus Beta or Safeguard.
type Policy struct {
	Method   Method
	Sinks    int
	Recent   int
	TopK     int
	Window   int
	Kernel   int
	Budget   int
	Adaptive bool
	// Rerotate (streaming and snapstream) re-indexes positions inside the cache during decode, as StreamingLLM's
	// original method does: a held key is rotated for its rank among the held positions and the query for the
	// rank of the current token (docs/policies.md §14). False: original absolute positions (the paper's choice).
	Rerotate bool
	// Bits and Group (kvquant only) are the quantized cache's bits per key and value element (2, 4 or 8) and its
	// group size: keys per channel over Group consecutive tokens, values per token over Group consecutive
	// channels (docs/policies.md §17, package compress/kvquant).
	Bits, Group int
	// Base is the policy under a per-layer (pyramidkv) or per-head (adakv) allocation of its top-K slots:
	// MethodSnapKV or MethodSnapStream, whose fields (Sinks ... Budget) this policy carries; "" for the other methods.
	Base Method
	// Beta (pyramidkv only) shapes the pyramid: the deepest layer gets about TopK/Beta top-K slots (docs/policies.md §20).
	Beta int
	// Safeguard (adakv only) is the percentage of the layer's mean top-K that every KV head keeps whatever the other
	// heads' scores (docs/policies.md §21).
	Safeguard int
	// Weights asks for the model's weights in another format than its own: "" (its own) or WeightsInt8.
	// It is not a cache parameter: it rides along in the spec ("snapstream:budget=256@int8") so that one
	// run can compare weight formats as it compares policies; backends that cannot honour it refuse it.
	Weights string
}

// WeightsInt8 is the Weights value for int8 weights (the CPU backend's Model.Int8).
const WeightsInt8 = "int8"

// MustParse is Parse that panics on error; for constants in code and tests.
func MustParse(spec string) Policy {
	p, err := Parse(spec)
	if err != nil {
		panic(err)
	}
	return p
}

// Parse reads a policy spec string, optionally followed by "@int8" (Policy.Weights):
//
//	full
//	full@int8                              (the full cache, with int8 weights)
//	streaming:sinks=4,recent=1024          (sinks defaults to 4; budget=B may replace recent: R = B - S)
//	snapkv:topk=2048,window=32,kernel=5    (window 32 and kernel 5 by default; budget=B may replace topk: K = B - W)
//	snapstream:budget=4096                 (S = 4, R = B/2, K = B - S - R, W = 32, k = 5)
//	snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5[,adaptive=true]
//	streaming:sinks=4,recent=60,rerotate=true (rerotate=true also for snapstream: positions re-indexed in the cache)
//	knorm:budget=256                       (the 256 prompt keys of lowest L2 norm per layer and KV head)
//	kvquant:bits=4                         (the full cache quantized to 4 bits; group defaults to 32)
//	h2o:budget=256[,recent=128]            (heavy hitters + the R most recent tokens; R = B/2 by default)
//	tova:budget=256                        (evict the lowest attention of the current query, per KV head)
//	pyramidkv:budget=256[,base=snapstream][,beta=20]   (per-layer top-K of snapkv, or snapstream, decreasing with depth)
//	adakv:budget=256[,base=snapstream][,safeguard=20]  (per-head top-K of snapkv, or snapstream, from the pooled scores)
//
// pyramidkv and adakv take the keys of their base (snapkv by default) with the same derivations.
// For snapstream, budget may be combined with some of sinks/recent/topk; the missing ones are derived
// from it (sinks defaults to 4; recent to B/2 when topk is also missing). Keys may come in any order;
// unknown, duplicate, negative or inconsistent values are errors. The result passes Validate.
func Parse(spec string) (Policy, error) {
	body, weights := spec, ""
	if i := strings.LastIndexByte(spec, '@'); i >= 0 {
		body, weights = spec[:i], spec[i+1:]
		if strings.Contains(body, "@") {
			return Policy{}, fmt.Errorf("policy %q: more than one '@'", spec)
		}
		if weights != WeightsInt8 {
			return Policy{}, fmt.Errorf("policy %q: weights %q after '@': want int8 (no suffix: the model's own weights)", spec, weights)
		}
	}
	p, err := parseBody(spec, body)
	if err != nil {
		return Policy{}, err
	}
	p.Weights = weights
	return p, nil
}

// parseBody parses the cache part of spec (body: spec without its weights suffix); errors name spec.
func parseBody(spec, body string) (Policy, error) {
	name, params, hasParams := strings.Cut(body, ":")
	m := Method(name)
	var allowed []string
	switch m {
	case MethodFull:
		if hasParams {
			return Policy{}, fmt.Errorf("policy %q: full takes no parameters", spec)
		}
		return Policy{Method: MethodFull}, nil
	case MethodStreaming:
		allowed = []string{"sinks", "recent", "budget", "rerotate"}
	case MethodKNorm:
		allowed = []string{"budget"}
	case MethodKVQuant:
		allowed = []string{"bits", "group"}
	case MethodSnapKV:
		allowed = []string{"topk", "window", "kernel", "budget"}
	case MethodSnapStream:
		allowed = []string{"sinks", "recent", "topk", "window", "kernel", "budget", "adaptive", "rerotate"}
	case MethodH2O:
		allowed = []string{"budget", "recent"}
	case MethodTOVA:
		allowed = []string{"budget"}
	case MethodPyramidKV, MethodAdaKV:
		extra := "beta"
		if m == MethodAdaKV {
			extra = "safeguard"
		}
		allowed = []string{"base", "sinks", "recent", "topk", "window", "kernel", "budget", extra}
	case "rkv":
		return Policy{}, fmt.Errorf("policy %q: rkv (R-KV) is not built: its definition could not be pinned down (docs/policies.md §22)", spec)
	default:
		return Policy{}, fmt.Errorf("policy %q: unknown method %q (want full, streaming, snapkv, snapstream, knorm, kvquant, h2o, tova, pyramidkv or adakv)", spec, name)
	}
	if !hasParams || params == "" {
		return Policy{}, fmt.Errorf("policy %q: %s needs parameters, e.g. %q", spec, m, example(m))
	}
	kv, err := parseParams(spec, params, allowed)
	if err != nil {
		return Policy{}, err
	}
	if m != MethodPyramidKV && m != MethodAdaKV {
		return derive(spec, m, kv)
	}
	// A per-layer or per-head allocation: the base's keys and derivations, then the allocation's own key.
	base := MethodSnapKV
	if kv["base"] == baseSnapStream {
		base = MethodSnapStream
	}
	delete(kv, "base")
	if base == MethodSnapKV {
		for _, k := range []string{"sinks", "recent"} {
			if _, ok := kv[k]; ok {
				return Policy{}, fmt.Errorf("policy %q: unknown key %q for base snapkv (base=snapstream takes it)", spec, k)
			}
		}
	}
	beta, hasBeta := kv["beta"]
	safe, hasSafe := kv["safeguard"]
	delete(kv, "beta")
	delete(kv, "safeguard")
	p, err := derive(spec, base, kv)
	if err != nil {
		return Policy{}, err
	}
	p.Method, p.Base = m, base
	switch {
	case m == MethodPyramidKV && hasBeta:
		p.Beta = beta
	case m == MethodPyramidKV:
		p.Beta = DefaultBeta
	case hasSafe:
		p.Safeguard = safe
	default:
		p.Safeguard = DefaultSafeguard
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("policy %q: %w", spec, err)
	}
	return p, nil
}

// baseSnapStream is the value parseParams gives base=snapstream (base=snapkv gives 0).
const baseSnapStream = 1

// derive resolves the parameters kv of method m (every method but full, pyramidkv and adakv) into a policy
// that passes Validate; errors name spec.
func derive(spec string, m Method, kv map[string]int) (Policy, error) {
	p := Policy{Method: m, Rerotate: kv["rerotate"] == 1}
	get := func(key string, def int) (int, bool) {
		v, ok := kv[key]
		if !ok {
			return def, false
		}
		return v, true
	}
	switch m {
	case MethodH2O:
		b, hasB := get("budget", 0)
		if !hasB {
			return Policy{}, fmt.Errorf("policy %q: h2o needs budget", spec)
		}
		r, hasR := get("recent", b/2)
		if !hasR && r < 1 {
			return Policy{}, fmt.Errorf("policy %q: budget %d leaves no recent slot for the current token (the default recent=budget/2 needs budget >= 2)", spec, b)
		}
		if r > b {
			return Policy{}, fmt.Errorf("policy %q: recent %d exceeds budget %d", spec, r, b)
		}
		p.Budget, p.Recent, p.TopK = b, r, b-r
	case MethodTOVA:
		b, hasB := get("budget", 0)
		if !hasB {
			return Policy{}, fmt.Errorf("policy %q: tova needs budget", spec)
		}
		p.Budget = b
	case MethodKVQuant:
		b, hasB := get("bits", 0)
		if !hasB {
			return Policy{}, fmt.Errorf("policy %q: kvquant needs bits (8, 4 or 2)", spec)
		}
		p.Bits = b
		p.Group, _ = get("group", kvquant.DefaultGroup)
	case MethodKNorm:
		b, hasB := get("budget", 0)
		if !hasB {
			return Policy{}, fmt.Errorf("policy %q: knorm needs budget", spec)
		}
		p.Budget, p.TopK = b, b
	case MethodStreaming:
		p.Sinks, _ = get("sinks", DefaultSinks)
		r, hasR := get("recent", 0)
		b, hasB := get("budget", 0)
		switch {
		case hasR && hasB && p.Sinks+r != b:
			return Policy{}, fmt.Errorf("policy %q: budget %d != sinks %d + recent %d", spec, b, p.Sinks, r)
		case hasR:
			p.Recent = r
		case hasB:
			if b <= p.Sinks {
				return Policy{}, fmt.Errorf("policy %q: budget %d must exceed sinks %d", spec, b, p.Sinks)
			}
			p.Recent = b - p.Sinks
		default:
			return Policy{}, fmt.Errorf("policy %q: streaming needs recent or budget", spec)
		}
		p.Budget = p.Sinks + p.Recent
	case MethodSnapKV:
		p.Window, _ = get("window", DefaultWindow)
		p.Kernel, _ = get("kernel", DefaultKernel)
		k, hasK := get("topk", 0)
		b, hasB := get("budget", 0)
		switch {
		case hasK && hasB && k+p.Window != b:
			return Policy{}, fmt.Errorf("policy %q: budget %d != topk %d + window %d", spec, b, k, p.Window)
		case hasK:
			p.TopK = k
		case hasB:
			if b < p.Window {
				return Policy{}, fmt.Errorf("policy %q: budget %d is smaller than window %d", spec, b, p.Window)
			}
			p.TopK = b - p.Window
		default:
			return Policy{}, fmt.Errorf("policy %q: snapkv needs topk or budget", spec)
		}
		p.Budget = p.TopK + p.Window
	case MethodSnapStream:
		p.Window, _ = get("window", DefaultWindow)
		p.Kernel, _ = get("kernel", DefaultKernel)
		p.Sinks, _ = get("sinks", DefaultSinks)
		r, hasR := get("recent", 0)
		k, hasK := get("topk", 0)
		b, hasB := get("budget", 0)
		if a, ok := kv["adaptive"]; ok {
			p.Adaptive = a == 1
		}
		if hasB {
			if b <= p.Sinks {
				return Policy{}, fmt.Errorf("policy %q: budget %d must exceed sinks %d", spec, b, p.Sinks)
			}
			switch {
			case hasR && hasK:
				if p.Sinks+r+k != b {
					return Policy{}, fmt.Errorf("policy %q: budget %d != sinks %d + recent %d + topk %d", spec, b, p.Sinks, r, k)
				}
			case hasR:
				k = b - p.Sinks - r
			case hasK:
				r = b - p.Sinks - k
			default:
				r = b / 2
				k = b - p.Sinks - r
			}
			if r < 0 || k < 0 {
				hint := ""
				if !hasR && !hasK {
					hint = fmt.Sprintf(" (the default split needs budget >= %d)", 2*p.Sinks-1)
				}
				return Policy{}, fmt.Errorf("policy %q: budget %d too small for sinks %d, recent %d, topk %d%s",
					spec, b, p.Sinks, r, k, hint)
			}
		} else if !hasR || !hasK {
			return Policy{}, fmt.Errorf("policy %q: snapstream needs budget, or both recent and topk", spec)
		}
		p.Recent, p.TopK = r, k
		p.Budget = p.Sinks + p.Recent + p.TopK
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("policy %q: %w", spec, err)
	}
	return p, nil
}

// parseParams splits "k=v,k=v" into a map, checking keys against allowed. Booleans map to 0/1.
func parseParams(spec, params string, allowed []string) (map[string]int, error) {
	kv := make(map[string]int, len(allowed))
	for i, item := range strings.Split(params, ",") {
		key, val, ok := strings.Cut(item, "=")
		if !ok || key == "" || val == "" {
			return nil, fmt.Errorf("policy %q: parameter %d %q is not key=value", spec, i+1, item)
		}
		known := false
		for _, a := range allowed {
			known = known || a == key
		}
		if !known {
			return nil, fmt.Errorf("policy %q: unknown key %q (allowed: %s)", spec, key, strings.Join(allowed, ", "))
		}
		if _, dup := kv[key]; dup {
			return nil, fmt.Errorf("policy %q: duplicate key %q", spec, key)
		}
		if key == "base" {
			switch val {
			case "snapkv":
				kv[key] = 0
			case "snapstream":
				kv[key] = baseSnapStream
			default:
				return nil, fmt.Errorf("policy %q: base=%q: want snapkv or snapstream", spec, val)
			}
			continue
		}
		if key == "adaptive" || key == "rerotate" {
			switch val {
			case "true":
				kv[key] = 1
			case "false":
				kv[key] = 0
			default:
				return nil, fmt.Errorf("policy %q: %s=%q: want true or false", spec, key, val)
			}
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil || strings.HasPrefix(val, "+") {
			return nil, fmt.Errorf("policy %q: %s=%q is not an integer", spec, key, val)
		}
		if n < 0 {
			return nil, fmt.Errorf("policy %q: %s=%d must not be negative", spec, key, n)
		}
		if n > maxValue {
			return nil, fmt.Errorf("policy %q: %s=%d is too large (max %d)", spec, key, n, maxValue)
		}
		kv[key] = n
	}
	return kv, nil
}

func example(m Method) string {
	switch m {
	case MethodStreaming:
		return "streaming:sinks=4,recent=1024"
	case MethodSnapKV:
		return "snapkv:topk=2048,window=32,kernel=5"
	case MethodKNorm:
		return "knorm:budget=2048"
	case MethodKVQuant:
		return "kvquant:bits=4"
	case MethodH2O:
		return "h2o:budget=2048"
	case MethodTOVA:
		return "tova:budget=2048"
	case MethodPyramidKV:
		return "pyramidkv:budget=2048"
	case MethodAdaKV:
		return "adakv:budget=2048"
	default:
		return "snapstream:budget=4096"
	}
}

// isDefaultSplit reports whether a snapstream policy's S/R/K split is the default one for its budget.
func (p Policy) isDefaultSplit() bool {
	return p.Sinks == DefaultSinks && p.Recent == p.Budget/2 && p.TopK == p.Budget-p.Sinks-p.Recent
}

// String returns the canonical spec of p; Parse(p.String()) == p for every p that passes Validate.
// Snapstream prints "snapstream:budget=B" (plus window/kernel when not the defaults, and adaptive=true)
// when its split is the default one for B, and the explicit form with all five parameters otherwise.
func (p Policy) String() string {
	if p.Weights != "" {
		q := p
		q.Weights = ""
		return q.String() + "@" + p.Weights
	}
	rerotate := ""
	if p.Rerotate {
		rerotate = ",rerotate=true"
	}
	switch p.Method {
	case MethodFull:
		return "full"
	case MethodKNorm:
		return fmt.Sprintf("knorm:budget=%d", p.Budget)
	case MethodKVQuant:
		return fmt.Sprintf("kvquant:bits=%d,group=%d", p.Bits, p.Group)
	case MethodH2O:
		if p.Recent == p.Budget/2 {
			return fmt.Sprintf("h2o:budget=%d", p.Budget)
		}
		return fmt.Sprintf("h2o:budget=%d,recent=%d", p.Budget, p.Recent)
	case MethodTOVA:
		return fmt.Sprintf("tova:budget=%d", p.Budget)
	case MethodPyramidKV, MethodAdaKV:
		_, params, _ := strings.Cut(p.base().String(), ":")
		if p.Base == MethodSnapStream {
			params = "base=snapstream," + params
		}
		switch {
		case p.Method == MethodPyramidKV && p.Beta != DefaultBeta:
			params += fmt.Sprintf(",beta=%d", p.Beta)
		case p.Method == MethodAdaKV && p.Safeguard != DefaultSafeguard:
			params += fmt.Sprintf(",safeguard=%d", p.Safeguard)
		}
		return string(p.Method) + ":" + params
	case MethodStreaming:
		return fmt.Sprintf("streaming:sinks=%d,recent=%d%s", p.Sinks, p.Recent, rerotate)
	case MethodSnapKV:
		return fmt.Sprintf("snapkv:topk=%d,window=%d,kernel=%d", p.TopK, p.Window, p.Kernel)
	case MethodSnapStream:
		var b strings.Builder
		if p.isDefaultSplit() {
			fmt.Fprintf(&b, "snapstream:budget=%d", p.Budget)
			if p.Window != DefaultWindow {
				fmt.Fprintf(&b, ",window=%d", p.Window)
			}
			if p.Kernel != DefaultKernel {
				fmt.Fprintf(&b, ",kernel=%d", p.Kernel)
			}
		} else {
			fmt.Fprintf(&b, "snapstream:sinks=%d,recent=%d,topk=%d,window=%d,kernel=%d",
				p.Sinks, p.Recent, p.TopK, p.Window, p.Kernel)
		}
		if p.Adaptive {
			b.WriteString(",adaptive=true")
		}
		b.WriteString(rerotate)
		return b.String()
	}
	return fmt.Sprintf("invalid-policy(%q)", string(p.Method))
}

// Split describes the slot split for reports, e.g. "S=4 K=2044 R=2048 W=32 k=5" ("" for full).
func (p Policy) Split() string {
	rr := ""
	if p.Rerotate {
		rr = " rerotate"
	}
	switch p.Method {
	case MethodKNorm:
		return fmt.Sprintf("K=%d (+decoded)", p.TopK)
	case MethodKVQuant:
		return fmt.Sprintf("all, %d-bit K/V, group %d", p.Bits, p.Group)
	case MethodH2O:
		return fmt.Sprintf("H=%d R=%d (evicting)", p.TopK, p.Recent)
	case MethodTOVA:
		return fmt.Sprintf("B=%d (evicting)", p.Budget)
	case MethodPyramidKV:
		return fmt.Sprintf("%s, K per layer (beta=%d)", p.base().Split(), p.Beta)
	case MethodAdaKV:
		return fmt.Sprintf("%s, K per head (safeguard=%d%%)", p.base().Split(), p.Safeguard)
	case MethodStreaming:
		return fmt.Sprintf("S=%d R=%d%s", p.Sinks, p.Recent, rr)
	case MethodSnapKV:
		return fmt.Sprintf("K=%d W=%d k=%d (+decoded)", p.TopK, p.Window, p.Kernel)
	case MethodSnapStream:
		s := fmt.Sprintf("S=%d K=%d R=%d W=%d k=%d", p.Sinks, p.TopK, p.Recent, p.Window, p.Kernel)
		if p.Adaptive {
			s += " adaptive"
		}
		return s + rr
	}
	return ""
}

// Validate checks that p is a complete, consistent policy: a known method, no negative or oversized
// values, unused fields zero, an odd kernel, a window of at least 1, a budget equal to the sum of its
// parts and larger than the sinks. A zero ring is allowed here (prefill-only use); Plan rejects it
// when tokens are to be decoded.
func (p Policy) Validate() error {
	if p.Weights != "" && p.Weights != WeightsInt8 {
		return fmt.Errorf("weights %q: want int8 or none", p.Weights)
	}
	alloc := p.Method == MethodPyramidKV || p.Method == MethodAdaKV
	switch {
	case !alloc && p.Base != "":
		return fmt.Errorf("%s does not use base", p.Method)
	case p.Method != MethodPyramidKV && p.Beta != 0:
		return fmt.Errorf("%s does not use beta (got %d)", p.Method, p.Beta)
	case p.Method != MethodAdaKV && p.Safeguard != 0:
		return fmt.Errorf("%s does not use safeguard (got %d)", p.Method, p.Safeguard)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"sinks", p.Sinks}, {"recent", p.Recent}, {"topk", p.TopK}, {"window", p.Window}, {"kernel", p.Kernel}, {"budget", p.Budget},
		{"bits", p.Bits}, {"group", p.Group}, {"beta", p.Beta}, {"safeguard", p.Safeguard}} {
		if f.v < 0 {
			return fmt.Errorf("%s=%d must not be negative", f.name, f.v)
		}
		if f.v > maxValue {
			return fmt.Errorf("%s=%d is too large (max %d)", f.name, f.v, maxValue)
		}
	}
	unused := func(names ...string) error {
		vals := map[string]int{"sinks": p.Sinks, "recent": p.Recent, "topk": p.TopK, "window": p.Window, "kernel": p.Kernel, "budget": p.Budget,
			"bits": p.Bits, "group": p.Group}
		for _, n := range names {
			if vals[n] != 0 {
				return fmt.Errorf("%s does not use %s (got %d)", p.Method, n, vals[n])
			}
		}
		if p.Adaptive && p.Method != MethodSnapStream {
			return fmt.Errorf("%s does not use adaptive", p.Method)
		}
		if p.Rerotate && p.Method != MethodSnapStream && p.Method != MethodStreaming {
			return fmt.Errorf("%s does not use rerotate", p.Method)
		}
		return nil
	}
	scored := func() error {
		if p.Window < 1 {
			return fmt.Errorf("window=%d must be at least 1", p.Window)
		}
		if p.Kernel < 1 || p.Kernel%2 == 0 {
			return fmt.Errorf("kernel=%d must be odd and positive", p.Kernel)
		}
		return nil
	}
	switch p.Method {
	case MethodFull:
		return unused("sinks", "recent", "topk", "window", "kernel", "budget", "bits", "group")
	case MethodKVQuant:
		if err := unused("sinks", "recent", "topk", "window", "kernel", "budget"); err != nil {
			return err
		}
		return p.Quant().Validate()
	}
	if err := unused("bits", "group"); err != nil {
		return err
	}
	switch p.Method {
	case MethodH2O:
		if err := unused("sinks", "window", "kernel"); err != nil {
			return err
		}
		if p.Recent < 1 {
			return fmt.Errorf("recent=%d must be at least 1 (the current token)", p.Recent)
		}
		if p.Budget != p.TopK+p.Recent {
			return fmt.Errorf("budget %d != heavy %d + recent %d", p.Budget, p.TopK, p.Recent)
		}
		return nil
	case MethodTOVA:
		if err := unused("sinks", "recent", "topk", "window", "kernel"); err != nil {
			return err
		}
		if p.Budget < 1 {
			return fmt.Errorf("budget=%d must be at least 1", p.Budget)
		}
		return nil
	case MethodPyramidKV, MethodAdaKV:
		if p.Base != MethodSnapKV && p.Base != MethodSnapStream {
			return fmt.Errorf("%s: base %q: want snapkv or snapstream", p.Method, string(p.Base))
		}
		if p.Adaptive || p.Rerotate {
			return fmt.Errorf("%s does not use adaptive or rerotate", p.Method)
		}
		if p.Method == MethodPyramidKV && p.Beta < 1 {
			return fmt.Errorf("beta=%d must be at least 1", p.Beta)
		}
		if p.Method == MethodAdaKV && p.Safeguard > 100 {
			return fmt.Errorf("safeguard=%d is a percentage (0 to 100)", p.Safeguard)
		}
		return p.base().Validate()
	case MethodKNorm:
		if err := unused("sinks", "recent", "window", "kernel"); err != nil {
			return err
		}
		if p.Budget < 1 {
			return fmt.Errorf("budget=%d must be at least 1", p.Budget)
		}
		if p.TopK != p.Budget {
			return fmt.Errorf("topk %d != budget %d", p.TopK, p.Budget)
		}
		return nil
	case MethodStreaming:
		if err := unused("topk", "window", "kernel"); err != nil {
			return err
		}
		if p.Budget != p.Sinks+p.Recent {
			return fmt.Errorf("budget %d != sinks %d + recent %d", p.Budget, p.Sinks, p.Recent)
		}
	case MethodSnapKV:
		if err := unused("sinks", "recent"); err != nil {
			return err
		}
		if err := scored(); err != nil {
			return err
		}
		if p.Budget != p.TopK+p.Window {
			return fmt.Errorf("budget %d != topk %d + window %d", p.Budget, p.TopK, p.Window)
		}
		return nil
	case MethodSnapStream:
		if err := scored(); err != nil {
			return err
		}
		if p.Budget != p.Sinks+p.Recent+p.TopK {
			return fmt.Errorf("budget %d != sinks %d + recent %d + topk %d", p.Budget, p.Sinks, p.Recent, p.TopK)
		}
	case "":
		return errors.New("no method")
	default:
		return fmt.Errorf("unknown method %q", string(p.Method))
	}
	if p.Budget <= p.Sinks {
		return fmt.Errorf("budget %d must exceed sinks %d", p.Budget, p.Sinks)
	}
	return nil
}

// Normalized returns p with the fields its method does not use set to zero and Budget recomputed
// from the parts: the way to turn a hand-filled struct (e.g. from a fixture that lists window=8 for
// streaming) into one that passes Validate.
func (p Policy) Normalized() Policy {
	switch p.Method {
	case MethodFull:
		return Policy{Method: MethodFull}
	case MethodStreaming:
		return Policy{Method: p.Method, Sinks: p.Sinks, Recent: p.Recent, Budget: p.Sinks + p.Recent, Rerotate: p.Rerotate}
	case MethodKNorm:
		return Policy{Method: p.Method, TopK: p.TopK, Budget: p.TopK}
	case MethodKVQuant:
		return Policy{Method: p.Method, Bits: p.Bits, Group: p.Group}
	case MethodH2O:
		return Policy{Method: p.Method, TopK: p.TopK, Recent: p.Recent, Budget: p.TopK + p.Recent}
	case MethodTOVA:
		return Policy{Method: p.Method, Budget: p.Budget}
	case MethodPyramidKV, MethodAdaKV:
		q := p.base().Normalized()
		q.Method, q.Base, q.Beta, q.Safeguard, q.Weights = p.Method, p.Base, p.Beta, p.Safeguard, p.Weights
		if q.Method != MethodPyramidKV {
			q.Beta = 0
		} else {
			q.Safeguard = 0
		}
		return q
	case MethodSnapKV:
		return Policy{Method: p.Method, TopK: p.TopK, Window: p.Window, Kernel: p.Kernel, Budget: p.TopK + p.Window}
	case MethodSnapStream:
		p.Budget = p.Sinks + p.Recent + p.TopK
	}
	return p
}

// Capacity returns the number of slots per layer and KV head that a sequence of promptLen prompt tokens
// and up to maxNew new tokens is given at admission (docs/policies.md §4): prompt+maxNew for full, S+R for
// streaming, K+W+maxNew for snapkv, B+maxNew for knorm, B for snapstream, h2o and tova, prompt+maxNew for kvquant
// (the full cache, quantized), and for pyramidkv and adakv their base's capacity, which is the mean over layers
// and KV heads of theirs (the total is the base's). It equals Plan(promptLen, maxNew).Capacity.
func (p Policy) Capacity(promptLen, maxNew int) int {
	switch p.Method {
	case MethodFull, MethodKVQuant:
		return promptLen + maxNew
	case MethodSnapKV, MethodKNorm:
		return p.TopK + p.Window + maxNew
	case MethodPyramidKV, MethodAdaKV:
		return p.base().Capacity(promptLen, maxNew)
	}
	return p.Budget
}

// base returns the snapkv or snapstream policy under a pyramidkv or adakv one (its allocation fields dropped).
func (p Policy) base() Policy {
	return Policy{Method: p.Base, Sinks: p.Sinks, Recent: p.Recent, TopK: p.TopK, Window: p.Window, Kernel: p.Kernel, Budget: p.Budget}
}

// Quant is the quantization format of a kvquant policy (the zero Format for every other method).
func (p Policy) Quant() kvquant.Format {
	return kvquant.Format{Bits: p.Bits, Group: p.Group}
}

// KVBytes returns the KV-cache memory of one sequence of capacity slots under p (docs/policies.md §10): the
// packed size for kvquant (kvquant.Format.Bytes: codes, float16 scales and zero points, and the keys of the
// group being filled in elements of elemBytes), and KVBytes(capacity, ...) for every other method.
func (p Policy) KVBytes(capacity, layers, kvHeads, headDim, elemBytes int) int64 {
	if p.Method == MethodKVQuant {
		return p.Quant().Bytes(capacity, layers, kvHeads, headDim, elemBytes)
	}
	return KVBytes(capacity, layers, kvHeads, headDim, elemBytes)
}
