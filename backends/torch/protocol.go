package torch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/snapeval/snapeval/compress"
)

// protocolVersion is the version of the line protocol this package speaks (snapworker.PROTOCOL_VERSION).
const protocolVersion = 1

// wirePlan is compress.Plan as the worker reads it (snapworker/plan.py): the whole layout comes from Go. Method and
// the fields after it say which policy's cache the worker builds (docs/policies.md §14-§21); Slots is what the
// worker allocates per layer and KV head (toWire), which differs from Capacity only under pyramidkv.
type wirePlan struct {
	PromptLen    int  `json:"prompt_len"`
	MaxNew       int  `json:"max_new"`
	Capacity     int  `json:"capacity"`
	Sinks        int  `json:"sinks"`
	Ring         int  `json:"ring"`
	TopK         int  `json:"topk"`
	Lo           int  `json:"lo"`
	Hi           int  `json:"hi"`
	ValidTopK    int  `json:"valid_topk"`
	NeedScores   bool `json:"need_scores"`
	Window       int  `json:"window"`
	Kernel       int  `json:"kernel"`
	AppendDecode bool `json:"append_decode"`
	// Method is the policy's method (compress.Method); Base the method under pyramidkv and adakv.
	Method string `json:"method"`
	Base   string `json:"base,omitempty"`
	// Rerotate: streaming or snapstream with positions re-indexed inside the cache during decode (§14).
	Rerotate bool `json:"rerotate,omitempty"`
	// Evict: h2o or tova, one eviction per decode step once full (§18-19); Ring is then h2o's recent window.
	Evict bool `json:"evict,omitempty"`
	// Bits and Group: kvquant's quantizer (§17).
	Bits  int `json:"bits,omitempty"`
	Group int `json:"group,omitempty"`
	// LayerTopK: pyramidkv's top-K count of every layer (compress.Plan.Layers), in layer order.
	LayerTopK []int `json:"layer_topk,omitempty"`
	// Safeguard: adakv's percentage of the layer's top-K every KV head keeps (§21).
	Safeguard int `json:"safeguard,omitempty"`
	// Slots is the number of slots the worker holds per layer and KV head (toWire).
	Slots int `json:"slots"`
}

// toWire is the plan of a sequence of a model with the given number of layers, as the worker reads it. Slots is the
// number of slots per layer and KV head the worker holds: Capacity, except under pyramidkv, whose layers have
// capacities of their own (compress.Plan.Layers) and which the worker's KV pool (one slot count per row in every
// layer) holds at the widest layer's. adakv's KV heads differ too, but a layer's heads share its Capacity x KV heads
// slots laid out one after the other (docs/policies.md §21), so they fit.
func toWire(p compress.Plan, layers int) wirePlan {
	pol := p.Policy
	w := wirePlan{PromptLen: p.PromptLen, MaxNew: p.MaxNew, Capacity: p.Capacity, Sinks: p.Sinks, Ring: p.Ring,
		TopK: p.TopK, Lo: p.Lo, Hi: p.Hi, ValidTopK: p.ValidTopK, NeedScores: p.NeedScores, Window: p.Window,
		Kernel: p.Kernel, AppendDecode: p.AppendDecode, Method: string(pol.Method), Base: string(pol.Base),
		Rerotate: pol.Rerotate, Evict: p.Evict, Slots: p.Capacity}
	switch pol.Method {
	case compress.MethodKVQuant:
		w.Bits, w.Group = pol.Bits, pol.Group
	case compress.MethodPyramidKV:
		for _, lp := range p.Layers(layers) {
			w.LayerTopK = append(w.LayerTopK, lp.TopK)
			w.Slots = max(w.Slots, lp.Capacity)
		}
	case compress.MethodAdaKV:
		w.Safeguard = pol.Safeguard
	}
	return w
}

// wireSampling is llm.Sampling without what the worker does not see (max new is in the plan, stops stay in Go).
type wireSampling struct {
	Temperature float64 `json:"temperature"`
	TopP        float64 `json:"top_p"`
	TopK        int     `json:"top_k"`
	Seed        uint64  `json:"seed"`
}

// command is one line to the worker: submit, cancel or shutdown.
type command struct {
	Op         string        `json:"op"`
	ID         int64         `json:"id,omitempty"`
	Prompt     []int         `json:"prompt,omitempty"`
	Plan       *wirePlan     `json:"plan,omitempty"`
	MaxNew     int           `json:"max_new,omitempty"`
	EOS        []int         `json:"eos,omitempty"`
	Sampling   *wireSampling `json:"sampling,omitempty"`
	WantKept   bool          `json:"want_kept,omitempty"`
	WantLogits bool          `json:"want_logits,omitempty"`
	// WantMargins asks for the top-1/top-2 logit gap of every generated token.
	WantMargins bool `json:"want_margins,omitempty"`
}

// Info is what the worker reports once its model is loaded (the "ready" event): software versions, the device and
// the model's shape as transformers loaded it.
type Info struct {
	Torch             string `json:"torch"`
	Transformers      string `json:"transformers"`
	Python            string `json:"python"`
	Device            string `json:"device"`
	GPU               string `json:"gpu"`
	DType             string `json:"dtype"`
	Attn              string `json:"attn"`
	TF32              bool   `json:"tf32"`
	ElemBytes         int    `json:"elem_bytes"`
	Architecture      string `json:"architecture"`
	ModelType         string `json:"model_type"`
	Layers            int    `json:"layers"`
	QHeads            int    `json:"q_heads"`
	KVHeads           int    `json:"kv_heads"`
	HeadDim           int    `json:"head_dim"`
	Vocab             int    `json:"vocab"`
	MaxPositions      int    `json:"max_positions"`
	Params            int64  `json:"params"`
	DeviceMemoryBytes int64  `json:"device_memory_bytes"`
	FreeBytes         int64  `json:"free_bytes"`
	// WeightBytes is the bytes of every parameter; WeightBytesRead leaves out the input embedding when it is not
	// tied to the output head (what one decode step reads).
	WeightBytes     int64 `json:"weight_bytes"`
	WeightBytesRead int64 `json:"weight_bytes_read"`
	// The KV pool allocated at start: PoolRows rows of PoolCapacity slots, KVPoolBytes in all (0: no pool, every
	// sequence allocates its own cache).
	KVPoolBytes  int64 `json:"kv_pool_bytes"`
	PoolRows     int   `json:"pool_rows"`
	PoolCapacity int   `json:"pool_capacity"`
	// StaticDecode: single-row pool sequences decode in one static forward; CUDAGraphs: replayed from CUDA graphs.
	StaticDecode bool   `json:"static_decode"`
	CUDAGraphs   bool   `json:"cuda_graphs"`
	DecodeAttn   string `json:"decode_attn"`
	// TP is how many processes (devices) the worker runs on (0 from a worker older than tensor parallelism: 1).
	// Memory is their total and FreeBytes TP times the least free on one device.
	TP int `json:"tp"`
}

func (i Info) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"layers", i.Layers}, {"kv_heads", i.KVHeads}, {"head_dim", i.HeadDim}, {"vocab", i.Vocab}, {"q_heads", i.QHeads}} {
		if f.v < 1 {
			return fmt.Errorf("info.%s: %d, want a positive number", f.name, f.v)
		}
	}
	if i.QHeads%i.KVHeads != 0 {
		return fmt.Errorf("info.q_heads: %d is not a multiple of kv_heads %d", i.QHeads, i.KVHeads)
	}
	if i.ElemBytes != 2 && i.ElemBytes != 4 {
		return fmt.Errorf("info.elem_bytes: %d, want 2 or 4", i.ElemBytes)
	}
	if i.MaxPositions < 0 || i.Params < 0 || i.DeviceMemoryBytes < 0 || i.FreeBytes < 0 || i.WeightBytes < 0 ||
		i.WeightBytesRead < 0 || i.KVPoolBytes < 0 || i.PoolRows < 0 || i.PoolCapacity < 0 {
		return errors.New("info: negative size")
	}
	if (i.KVPoolBytes > 0) != (i.PoolRows > 0 && i.PoolCapacity > 0) {
		return fmt.Errorf("info: kv_pool_bytes %d with %d pool rows of %d slots", i.KVPoolBytes, i.PoolRows, i.PoolCapacity)
	}
	if i.TP < 0 || (i.TP > 1 && i.KVHeads%i.TP != 0) {
		return fmt.Errorf("info.tp: %d does not divide kv_heads %d", i.TP, i.KVHeads)
	}
	return nil
}

// Event kinds of the worker.
const (
	evReady  = "ready"
	evTokens = "tokens"
	evDone   = "done"
	evError  = "error"
	evFatal  = "fatal"
)

// event is one decoded line from the worker.
type event struct {
	Kind            string
	Info            Info      // ready
	Tokens          [][2]int  // tokens: (request id, token) pairs
	ID              int64     // done, error
	Finish          string    // done: stop, length or canceled
	N               int       // done: tokens generated
	Prefill, Decode float64   // done: milliseconds
	KVBytes         int64     // done
	Kept            [][][]int // done, when asked
	Logits          []float32 // done, when asked (NaN where the worker sent null)
	Margins         []float64 // done, when asked: top-1/top-2 logit gap per generated token
	Peak            int64     // done: the device's peak allocated bytes so far (0 on the CPU)
	ErrKind         string    // error, fatal
	Msg             string    // error, fatal
}

type rawEvent struct {
	Ev       string     `json:"ev"`
	Protocol *int       `json:"protocol"`
	Info     *Info      `json:"info"`
	T        [][]int64  `json:"t"`
	ID       *int64     `json:"id"`
	Finish   string     `json:"finish"`
	Tokens   *int       `json:"tokens"`
	Prefill  float64    `json:"prefill_ms"`
	Decode   float64    `json:"decode_ms"`
	KVBytes  int64      `json:"kv_bytes"`
	Kept     [][][]int  `json:"kept"`
	Logits   []*float64 `json:"logits"`
	Margins  []float64  `json:"margins"`
	Peak     int64      `json:"peak_bytes"`
	Kind     string     `json:"kind"`
	Msg      string     `json:"msg"`
}

// decodeEvent parses and checks one line of the worker's output. The worker is another program: every field is
// checked, and a bad line is an error naming what is wrong, never a panic.
func decodeEvent(line []byte) (event, error) {
	var r rawEvent
	if err := json.Unmarshal(line, &r); err != nil {
		return event{}, fmt.Errorf("worker line is not a JSON event: %v", err)
	}
	ev := event{Kind: r.Ev}
	id := func() error {
		if r.ID == nil || *r.ID < 0 {
			return fmt.Errorf("%s event: id missing or negative", r.Ev)
		}
		ev.ID = *r.ID
		return nil
	}
	switch r.Ev {
	case evReady:
		if r.Protocol == nil || *r.Protocol != protocolVersion {
			return event{}, fmt.Errorf("ready event: protocol %v, want %d (the worker code does not match this snapeval)", deref(r.Protocol), protocolVersion)
		}
		if r.Info == nil {
			return event{}, errors.New("ready event: no info")
		}
		if err := r.Info.check(); err != nil {
			return event{}, fmt.Errorf("ready event: %w", err)
		}
		ev.Info = *r.Info
	case evTokens:
		if len(r.T) == 0 {
			return event{}, errors.New("tokens event: no tokens")
		}
		ev.Tokens = make([][2]int, len(r.T))
		for i, p := range r.T {
			if len(p) != 2 || p[0] < 0 || p[1] < 0 || p[1] > math.MaxInt32 {
				return event{}, fmt.Errorf("tokens event: item %d is not an [id, token] pair of non-negative integers", i)
			}
			ev.Tokens[i] = [2]int{int(p[0]), int(p[1])}
		}
	case evDone:
		if err := id(); err != nil {
			return event{}, err
		}
		switch r.Finish {
		case "stop", "length", "canceled":
		default:
			return event{}, fmt.Errorf("done event: finish %q, want stop, length or canceled", r.Finish)
		}
		if r.Tokens == nil || *r.Tokens < 0 {
			return event{}, errors.New("done event: tokens missing or negative")
		}
		if !(r.Prefill >= 0) || !(r.Decode >= 0) || r.KVBytes < 0 {
			return event{}, errors.New("done event: negative or missing timing or size")
		}
		if r.Peak < 0 {
			return event{}, errors.New("done event: negative peak_bytes")
		}
		ev.Finish, ev.N, ev.Prefill, ev.Decode, ev.KVBytes, ev.Kept = r.Finish, *r.Tokens, r.Prefill, r.Decode, r.KVBytes, r.Kept
		ev.Margins, ev.Peak = r.Margins, r.Peak
		if r.Logits != nil {
			ev.Logits = make([]float32, len(r.Logits))
			for i, v := range r.Logits {
				ev.Logits[i] = float32(math.NaN())
				if v != nil {
					ev.Logits[i] = float32(*v)
				}
			}
		}
	case evError:
		if err := id(); err != nil {
			return event{}, err
		}
		if r.Kind == "" || r.Msg == "" {
			return event{}, errors.New("error event: kind or msg missing")
		}
		ev.ErrKind, ev.Msg = r.Kind, r.Msg
	case evFatal:
		if r.Msg == "" {
			return event{}, errors.New("fatal event: msg missing")
		}
		ev.ErrKind, ev.Msg = r.Kind, r.Msg
	default:
		return event{}, fmt.Errorf("unknown worker event %q", r.Ev)
	}
	return ev, nil
}

func deref(p *int) any {
	if p == nil {
		return "missing"
	}
	return *p
}
