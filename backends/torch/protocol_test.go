package torch

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestDecodeEvent(t *testing.T) {
	info := `{"torch":"2.11","transformers":"5.17","layers":32,"q_heads":32,"kv_heads":8,"head_dim":128,"vocab":128256,"elem_bytes":2,"max_positions":131072}`
	good := []struct {
		line string
		want event
	}{
		{`{"ev":"ready","protocol":1,"info":` + info + `}`, event{Kind: evReady, Info: Info{Torch: "2.11", Transformers: "5.17", Layers: 32, QHeads: 32, KVHeads: 8, HeadDim: 128, Vocab: 128256, ElemBytes: 2, MaxPositions: 131072}}},
		{`{"ev":"tokens","t":[[1,5],[2,0]]}`, event{Kind: evTokens, Tokens: [][2]int{{1, 5}, {2, 0}}}},
		{`{"ev":"done","id":3,"finish":"length","tokens":4,"prefill_ms":1.5,"decode_ms":2,"kv_bytes":100,"kept":[[[0,1]]]}`,
			event{Kind: evDone, ID: 3, Finish: "length", N: 4, Prefill: 1.5, Decode: 2, KVBytes: 100, Kept: [][][]int{{{0, 1}}}}},
		{`{"ev":"error","id":0,"kind":"oom","msg":"out of memory"}`, event{Kind: evError, ErrKind: "oom", Msg: "out of memory"}},
		{`{"ev":"fatal","kind":"setup","msg":"no torch"}`, event{Kind: evFatal, ErrKind: "setup", Msg: "no torch"}},
	}
	for _, c := range good {
		got, err := decodeEvent([]byte(c.line))
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(c.want)
		if string(gb) != string(wb) {
			t.Errorf("%s:\n got %s\nwant %s", c.line, gb, wb)
		}
	}
	ev, err := decodeEvent([]byte(`{"ev":"done","id":1,"finish":"stop","tokens":0,"logits":[1.5,null,-2]}`))
	if err != nil || len(ev.Logits) != 3 || ev.Logits[0] != 1.5 || !math.IsNaN(float64(ev.Logits[1])) {
		t.Errorf("logits with null: %v %v", ev.Logits, err)
	}
	bad := []struct{ line, want string }{
		{`not json`, "not a JSON event"},
		{`[]`, "not a JSON event"},
		{`{"ev":"hello"}`, "unknown worker event"},
		{`{"ev":"ready","protocol":2,"info":` + info + `}`, "protocol 2"},
		{`{"ev":"ready","info":` + info + `}`, "protocol missing"},
		{`{"ev":"ready","protocol":1}`, "no info"},
		{`{"ev":"ready","protocol":1,"info":{"layers":1,"q_heads":4,"kv_heads":3,"head_dim":8,"vocab":9,"elem_bytes":2}}`, "multiple"},
		{`{"ev":"ready","protocol":1,"info":{"layers":1,"q_heads":4,"kv_heads":4,"head_dim":8,"vocab":9,"elem_bytes":3}}`, "elem_bytes"},
		{`{"ev":"ready","protocol":1,"info":{"layers":0,"q_heads":4,"kv_heads":4,"head_dim":8,"vocab":9,"elem_bytes":2}}`, "info.layers"},
		{`{"ev":"ready","protocol":1,"info":{"layers":1,"q_heads":4,"kv_heads":4,"head_dim":8,"vocab":9,"elem_bytes":2,"kv_pool_bytes":64}}`, "pool rows"},
		{`{"ev":"ready","protocol":1,"info":{"layers":1,"q_heads":4,"kv_heads":4,"head_dim":8,"vocab":9,"elem_bytes":2,"pool_rows":-1}}`, "negative size"},
		{`{"ev":"tokens","t":[]}`, "no tokens"},
		{`{"ev":"tokens","t":[[1]]}`, "item 0"},
		{`{"ev":"tokens","t":[[1,2],[-1,2]]}`, "item 1"},
		{`{"ev":"tokens","t":[[1,99999999999]]}`, "item 0"},
		{`{"ev":"done","finish":"stop","tokens":1}`, "id missing"},
		{`{"ev":"done","id":1,"finish":"maybe","tokens":1}`, "finish"},
		{`{"ev":"done","id":1,"finish":"stop"}`, "tokens missing"},
		{`{"ev":"done","id":1,"finish":"stop","tokens":1,"prefill_ms":-1}`, "negative"},
		{`{"ev":"done","id":1,"finish":"stop","tokens":1,"kept":"x"}`, "not a JSON event"},
		{`{"ev":"error","id":1,"kind":"oom"}`, "msg missing"},
		{`{"ev":"fatal","kind":"setup"}`, "msg missing"},
	}
	for _, c := range bad {
		_, err := decodeEvent([]byte(c.line))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.line, err, c.want)
		}
	}
}

// FuzzDecodeEvent: any line from the worker decodes to a checked event or an error, never a panic.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"ev":"ready","protocol":1,"info":{"layers":2,"q_heads":4,"kv_heads":2,"head_dim":16,"vocab":1500,"elem_bytes":2}}`,
		`{"ev":"tokens","t":[[1,5],[2,0]]}`,
		`{"ev":"done","id":3,"finish":"length","tokens":4,"prefill_ms":1.5,"decode_ms":2,"kv_bytes":100,"kept":[[[0,1]]],"logits":[1,null]}`,
		`{"ev":"error","id":0,"kind":"oom","msg":"x"}`, `{"ev":"fatal","kind":"setup","msg":"y"}`, `{}`, `null`, `{"ev":"done","id":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := decodeEvent(line)
		if err != nil {
			return
		}
		switch ev.Kind {
		case evReady:
			if ev.Info.check() != nil {
				t.Fatalf("accepted a bad info: %+v", ev.Info)
			}
		case evTokens:
			if len(ev.Tokens) == 0 {
				t.Fatal("accepted an empty tokens event")
			}
			for _, p := range ev.Tokens {
				if p[0] < 0 || p[1] < 0 {
					t.Fatalf("accepted a negative pair %v", p)
				}
			}
		case evDone:
			if ev.ID < 0 || ev.N < 0 || ev.Prefill < 0 || ev.Decode < 0 || ev.KVBytes < 0 {
				t.Fatalf("accepted a bad done event %+v", ev)
			}
		case evError, evFatal:
			if ev.Msg == "" {
				t.Fatal("accepted an error without a message")
			}
		default:
			t.Fatalf("accepted an unknown kind %q", ev.Kind)
		}
	})
}
