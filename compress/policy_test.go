package compress

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec      string
		want      Policy
		canonical string
	}{
		{"full", Policy{Method: MethodFull}, "full"},
		{"streaming:sinks=4,recent=1024", Policy{Method: MethodStreaming, Sinks: 4, Recent: 1024, Budget: 1028}, ""},
		{"streaming:recent=1024", Policy{Method: MethodStreaming, Sinks: 4, Recent: 1024, Budget: 1028}, "streaming:sinks=4,recent=1024"},
		{"streaming:budget=1028", Policy{Method: MethodStreaming, Sinks: 4, Recent: 1024, Budget: 1028}, "streaming:sinks=4,recent=1024"},
		{"streaming:sinks=0,recent=8", Policy{Method: MethodStreaming, Recent: 8, Budget: 8}, ""},
		{"snapkv:topk=2048,window=32,kernel=5", Policy{Method: MethodSnapKV, TopK: 2048, Window: 32, Kernel: 5, Budget: 2080}, ""},
		{"snapkv:topk=48", Policy{Method: MethodSnapKV, TopK: 48, Window: 32, Kernel: 5, Budget: 80}, "snapkv:topk=48,window=32,kernel=5"},
		{"snapkv:budget=64,window=16", Policy{Method: MethodSnapKV, TopK: 48, Window: 16, Kernel: 5, Budget: 64}, "snapkv:topk=48,window=16,kernel=5"},
		{"snapstream:budget=4096", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2044, Window: 32, Kernel: 5, Budget: 4096}, ""},
		{"snapstream:budget=4097", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2045, Window: 32, Kernel: 5, Budget: 4097}, ""},
		{"snapstream:budget=7", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 3, TopK: 0, Window: 32, Kernel: 5, Budget: 7}, ""},
		{"snapstream:kernel=7,budget=4096,window=64", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2044, Window: 64, Kernel: 7, Budget: 4096}, "snapstream:budget=4096,window=64,kernel=7"},
		{"snapstream:budget=4096,adaptive=true", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2044, Window: 32, Kernel: 5, Budget: 4096, Adaptive: true}, ""},
		{"snapstream:budget=4096,adaptive=false", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2044, Window: 32, Kernel: 5, Budget: 4096}, "snapstream:budget=4096"},
		{"snapstream:budget=4096,sinks=4,recent=2048", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 2048, TopK: 2044, Window: 32, Kernel: 5, Budget: 4096}, "snapstream:budget=4096"},
		{"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 16, TopK: 24, Window: 8, Kernel: 5, Budget: 44}, ""},
		{"snapstream:recent=16,topk=24", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 16, TopK: 24, Window: 32, Kernel: 5, Budget: 44}, "snapstream:sinks=4,recent=16,topk=24,window=32,kernel=5"},
		{"snapstream:budget=100,topk=10", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 86, TopK: 10, Window: 32, Kernel: 5, Budget: 100}, "snapstream:sinks=4,recent=86,topk=10,window=32,kernel=5"},
		{"snapstream:budget=100,sinks=0", Policy{Method: MethodSnapStream, Sinks: 0, Recent: 50, TopK: 50, Window: 32, Kernel: 5, Budget: 100}, "snapstream:sinks=0,recent=50,topk=50,window=32,kernel=5"},
		{"snapstream:sinks=4,recent=0,topk=50,window=64,kernel=9", Policy{Method: MethodSnapStream, Sinks: 4, TopK: 50, Window: 64, Kernel: 9, Budget: 54}, ""},
		{"snapstream:sinks=2,recent=8,topk=40,window=16,kernel=7,adaptive=true", Policy{Method: MethodSnapStream, Sinks: 2, Recent: 8, TopK: 40, Window: 16, Kernel: 7, Budget: 50, Adaptive: true}, ""},
		{"full@int8", Policy{Method: MethodFull, Weights: WeightsInt8}, ""},
		{"snapstream:budget=256,sinks=4@int8", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 128, TopK: 124, Window: 32, Kernel: 5, Budget: 256, Weights: WeightsInt8}, "snapstream:budget=256@int8"},
		{"streaming:recent=8@int8", Policy{Method: MethodStreaming, Sinks: 4, Recent: 8, Budget: 12, Weights: WeightsInt8}, "streaming:sinks=4,recent=8@int8"},
		{"streaming:sinks=4,recent=60,rerotate=true", Policy{Method: MethodStreaming, Sinks: 4, Recent: 60, Budget: 64, Rerotate: true}, ""},
		{"streaming:rerotate=false,budget=64", Policy{Method: MethodStreaming, Sinks: 4, Recent: 60, Budget: 64}, "streaming:sinks=4,recent=60"},
		{"snapstream:rerotate=true,budget=256", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 128, TopK: 124, Window: 32, Kernel: 5, Budget: 256, Rerotate: true}, "snapstream:budget=256,rerotate=true"},
		{"snapstream:budget=256,adaptive=true,rerotate=true@int8", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 128, TopK: 124, Window: 32, Kernel: 5, Budget: 256, Adaptive: true, Rerotate: true, Weights: WeightsInt8}, ""},
		{"snapstream:sinks=2,recent=8,topk=40,window=16,kernel=7,rerotate=true", Policy{Method: MethodSnapStream, Sinks: 2, Recent: 8, TopK: 40, Window: 16, Kernel: 7, Budget: 50, Rerotate: true}, ""},
		{"knorm:budget=256", Policy{Method: MethodKNorm, TopK: 256, Budget: 256}, ""},
		{"knorm:budget=1@int8", Policy{Method: MethodKNorm, TopK: 1, Budget: 1, Weights: WeightsInt8}, ""},
		{"kvquant:bits=4", Policy{Method: MethodKVQuant, Bits: 4, Group: 32}, "kvquant:bits=4,group=32"},
		{"kvquant:group=128,bits=8", Policy{Method: MethodKVQuant, Bits: 8, Group: 128}, "kvquant:bits=8,group=128"},
		{"kvquant:bits=2,group=1", Policy{Method: MethodKVQuant, Bits: 2, Group: 1}, ""},
		{"kvquant:bits=4,group=65536@int8", Policy{Method: MethodKVQuant, Bits: 4, Group: 65536, Weights: WeightsInt8}, ""},
		{"h2o:budget=256", Policy{Method: MethodH2O, TopK: 128, Recent: 128, Budget: 256}, ""},
		{"h2o:budget=257", Policy{Method: MethodH2O, TopK: 129, Recent: 128, Budget: 257}, ""},
		{"h2o:recent=1,budget=64", Policy{Method: MethodH2O, TopK: 63, Recent: 1, Budget: 64}, "h2o:budget=64,recent=1"},
		{"h2o:budget=64,recent=64", Policy{Method: MethodH2O, Recent: 64, Budget: 64}, ""},
		{"h2o:budget=2", Policy{Method: MethodH2O, TopK: 1, Recent: 1, Budget: 2}, ""},
		{"h2o:budget=1,recent=1@int8", Policy{Method: MethodH2O, Recent: 1, Budget: 1, Weights: WeightsInt8}, ""},
		{"tova:budget=256", Policy{Method: MethodTOVA, Budget: 256}, ""},
		{"tova:budget=1", Policy{Method: MethodTOVA, Budget: 1}, ""},
		{"pyramidkv:budget=256", Policy{Method: MethodPyramidKV, Base: MethodSnapKV, TopK: 224, Window: 32, Kernel: 5, Budget: 256, Beta: 20}, "pyramidkv:topk=224,window=32,kernel=5"},
		{"pyramidkv:topk=224,window=32,kernel=5", Policy{Method: MethodPyramidKV, Base: MethodSnapKV, TopK: 224, Window: 32, Kernel: 5, Budget: 256, Beta: 20}, ""},
		{"pyramidkv:base=snapkv,budget=64,window=16,beta=4", Policy{Method: MethodPyramidKV, Base: MethodSnapKV, TopK: 48, Window: 16, Kernel: 5, Budget: 64, Beta: 4}, "pyramidkv:topk=48,window=16,kernel=5,beta=4"},
		{"pyramidkv:budget=256,base=snapstream", Policy{Method: MethodPyramidKV, Base: MethodSnapStream, Sinks: 4, Recent: 128, TopK: 124, Window: 32, Kernel: 5, Budget: 256, Beta: 20}, "pyramidkv:base=snapstream,budget=256"},
		{"pyramidkv:base=snapstream,sinks=4,recent=16,topk=24,window=8,kernel=5,beta=3", Policy{Method: MethodPyramidKV, Base: MethodSnapStream, Sinks: 4, Recent: 16, TopK: 24, Window: 8, Kernel: 5, Budget: 44, Beta: 3}, ""},
		{"adakv:budget=256", Policy{Method: MethodAdaKV, Base: MethodSnapKV, TopK: 224, Window: 32, Kernel: 5, Budget: 256, Safeguard: 20}, "adakv:topk=224,window=32,kernel=5"},
		{"adakv:base=snapstream,budget=256,safeguard=0", Policy{Method: MethodAdaKV, Base: MethodSnapStream, Sinks: 4, Recent: 128, TopK: 124, Window: 32, Kernel: 5, Budget: 256}, "adakv:base=snapstream,budget=256,safeguard=0"},
		{"adakv:topk=8,window=4,kernel=3,safeguard=100@int8", Policy{Method: MethodAdaKV, Base: MethodSnapKV, TopK: 8, Window: 4, Kernel: 3, Budget: 12, Safeguard: 100, Weights: WeightsInt8}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			canonical := tt.canonical
			if canonical == "" {
				canonical = tt.spec
			}
			if s := got.String(); s != canonical {
				t.Fatalf("String = %q, want %q", s, canonical)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ spec, wantErr string }{
		{"", "unknown method"},
		{"full@int4", `weights "int4" after '@': want int8`},
		{"full@", `weights "" after '@'`},
		{"full@bf16", "no suffix: the model's own weights"},
		{"full@int8@int8", "more than one '@'"},
		{"@int8", "unknown method"},
		{"snapstream:budget=3@int8", "budget 3 must exceed sinks 4"},
		{"Full", "unknown method"},
		{"quest:budget=4", "unknown method"},
		{"rkv:budget=4", "rkv (R-KV) is not built"},
		{"h2o", "needs parameters"},
		{"h2o:recent=4", "h2o needs budget"},
		{"h2o:budget=1", "the default recent=budget/2 needs budget >= 2"},
		{"h2o:budget=8,recent=0", "recent=0 must be at least 1"},
		{"h2o:budget=8,recent=9", "recent 9 exceeds budget 8"},
		{"h2o:budget=8,topk=4", `unknown key "topk"`},
		{"h2o:budget=8,rerotate=true", `unknown key "rerotate"`},
		{"tova:budget=0", "budget=0 must be at least 1"},
		{"tova:recent=4", `unknown key "recent"`},
		{"tova:window=4", `unknown key "window"`},
		{"pyramidkv:budget=256,base=streaming", `base="streaming": want snapkv or snapstream`},
		{"pyramidkv:budget=256,recent=8", `unknown key "recent" for base snapkv`},
		{"pyramidkv:budget=256,beta=0", "beta=0 must be at least 1"},
		{"pyramidkv:budget=256,safeguard=20", `unknown key "safeguard"`},
		{"pyramidkv:budget=256,adaptive=true", `unknown key "adaptive"`},
		{"pyramidkv:base=snapstream,budget=6", "default split needs budget >= 7"},
		{"pyramidkv:window=8", "snapkv needs topk or budget"},
		{"pyramidkv:budget=256,bits=4", `unknown key "bits"`},
		{"adakv:budget=256,safeguard=101", "safeguard=101 is a percentage"},
		{"adakv:budget=256,beta=2", `unknown key "beta"`},
		{"adakv:budget=8,window=16", "budget 8 is smaller than window 16"},
		{"adakv:base=snapstream,budget=64,kernel=4", "kernel=4 must be odd"},
		{"snapkv:topk=8,rerotate=true", `unknown key "rerotate"`},
		{"streaming:recent=8,rerotate=yes", `rerotate="yes": want true or false`},
		{"streaming:recent=8,rerotate=true,rerotate=true", `duplicate key "rerotate"`},
		{"knorm", "needs parameters"},
		{"knorm:budget=0", "budget=0 must be at least 1"},
		{"knorm:topk=8", `unknown key "topk"`},
		{"knorm:rerotate=true", `unknown key "rerotate"`},
		{"knorm:budget=-1", "must not be negative"},
		{"full:", "full takes no parameters"},
		{"full:budget=4", "full takes no parameters"},
		{"snapstream", "needs parameters"},
		{"snapstream:", "needs parameters"},
		{"snapstream:budget", "not key=value"},
		{"snapstream:budget=", "not key=value"},
		{"snapstream:=4", "not key=value"},
		{"snapstream:budget=4096,", "not key=value"},
		{"snapstream:budget=4096,,window=4", "not key=value"},
		{"snapstream: budget=4096", "unknown key"},
		{"snapstream:budget=4096,foo=1", `unknown key "foo"`},
		{"snapstream:budget=4096,budget=4096", `duplicate key "budget"`},
		{"snapstream:budget=abc", "not an integer"},
		{"snapstream:budget=1.5", "not an integer"},
		{"snapstream:budget=+5", "not an integer"},
		{"snapstream:budget=99999999999999999999999", "not an integer"},
		{"snapstream:budget=4294967296", "too large"},
		{"snapstream:budget=-4", "must not be negative"},
		{"snapstream:budget=4096,kernel=4", "kernel=4 must be odd"},
		{"snapstream:budget=4096,kernel=0", "kernel=0 must be odd"},
		{"snapstream:budget=4096,window=0", "window=0 must be at least 1"},
		{"snapstream:budget=4096,adaptive=yes", "want true or false"},
		{"snapstream:budget=4", "budget 4 must exceed sinks 4"},
		{"snapstream:budget=3", "budget 3 must exceed sinks 4"},
		{"snapstream:budget=6", "default split needs budget >= 7"},
		{"snapstream:budget=10,recent=8", "too small"},
		{"snapstream:budget=10,recent=2,topk=2", "budget 10 != sinks 4 + recent 2 + topk 2"},
		{"snapstream:sinks=4,recent=16", "needs budget, or both recent and topk"},
		{"snapstream:sinks=4,recent=0,topk=0", "budget 4 must exceed sinks 4"},
		{"streaming:sinks=4", "needs recent or budget"},
		{"streaming:sinks=4,recent=8,topk=2", `unknown key "topk"`},
		{"streaming:sinks=4,recent=8,budget=13", "budget 13 != sinks 4 + recent 8"},
		{"streaming:budget=4", "budget 4 must exceed sinks 4"},
		{"streaming:sinks=4,recent=0", "budget 4 must exceed sinks 4"},
		{"streaming:recent=8,adaptive=true", `unknown key "adaptive"`},
		{"snapkv:window=8", "needs topk or budget"},
		{"snapkv:topk=8,sinks=4", `unknown key "sinks"`},
		{"snapkv:topk=8,kernel=2", "kernel=2 must be odd"},
		{"snapkv:budget=8,window=16", "budget 8 is smaller than window 16"},
		{"snapkv:budget=8,topk=2,window=4", "budget 8 != topk 2 + window 4"},
		{"kvquant", "needs parameters"},
		{"kvquant:group=32", "kvquant needs bits (8, 4 or 2)"},
		{"kvquant:bits=3", "bits=3: want 2, 4 or 8"},
		{"kvquant:bits=16", "bits=16: want 2, 4 or 8"},
		{"kvquant:bits=0", "bits=0: want 2, 4 or 8"},
		{"kvquant:bits=4,group=0", "group=0: want 1 .. 65536"},
		{"kvquant:bits=4,group=65537", "group=65537: want 1 .. 65536"},
		{"kvquant:bits=4,budget=256", `unknown key "budget"`},
		{"kvquant:bits=4,rerotate=true", `unknown key "rerotate"`},
		{"kvquant:bits=4,bits=8", `duplicate key "bits"`},
		{"kvquant:bits=four", "not an integer"},
		{"kvquant:bits=4@int4", `weights "int4"`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error containing %q", tt.spec, p, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.spec) {
				t.Fatalf("error %q does not name the spec", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr string
	}{
		{"full ok", Policy{Method: MethodFull}, ""},
		{"full with budget", Policy{Method: MethodFull, Budget: 8}, "full does not use budget"},
		{"no method", Policy{}, "no method"},
		{"unknown", Policy{Method: "quest"}, "unknown method"},
		{"h2o ok", Policy{Method: MethodH2O, TopK: 4, Recent: 4, Budget: 8}, ""},
		{"h2o no recent", Policy{Method: MethodH2O, TopK: 8, Budget: 8}, "recent=0 must be at least 1"},
		{"h2o sum", Policy{Method: MethodH2O, TopK: 4, Recent: 4, Budget: 9}, "budget 9 != heavy 4 + recent 4"},
		{"h2o window", Policy{Method: MethodH2O, TopK: 4, Recent: 4, Budget: 8, Window: 2}, "h2o does not use window"},
		{"h2o bits", Policy{Method: MethodH2O, TopK: 4, Recent: 4, Budget: 8, Bits: 4}, "h2o does not use bits"},
		{"tova topk", Policy{Method: MethodTOVA, TopK: 4, Budget: 8}, "tova does not use topk"},
		{"tova adaptive", Policy{Method: MethodTOVA, Budget: 8, Adaptive: true}, "does not use adaptive"},
		{"snapkv base", Policy{Method: MethodSnapKV, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Base: MethodSnapKV}, "snapkv does not use base"},
		{"snapkv beta", Policy{Method: MethodSnapKV, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Beta: 2}, "snapkv does not use beta"},
		{"kvquant safeguard", Policy{Method: MethodKVQuant, Bits: 4, Group: 32, Safeguard: 2}, "kvquant does not use safeguard"},
		{"pyramidkv safeguard", Policy{Method: MethodPyramidKV, Base: MethodSnapKV, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Beta: 2, Safeguard: 2}, "pyramidkv does not use safeguard"},
		{"pyramidkv base", Policy{Method: MethodPyramidKV, Base: MethodStreaming, Sinks: 4, Recent: 4, Budget: 8, Beta: 2}, `base "streaming"`},
		{"pyramidkv bad base fields", Policy{Method: MethodPyramidKV, Base: MethodSnapKV, Sinks: 4, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Beta: 2}, "snapkv does not use sinks"},
		{"pyramidkv rerotate", Policy{Method: MethodPyramidKV, Base: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 3, Budget: 12, Beta: 2, Rerotate: true}, "pyramidkv does not use rerotate"},
		{"adakv ok", Policy{Method: MethodAdaKV, Base: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 3, Budget: 12, Safeguard: 50}, ""},
		{"negative", Policy{Method: MethodStreaming, Sinks: -1, Recent: 4, Budget: 3}, "sinks=-1 must not be negative"},
		{"streaming window", Policy{Method: MethodStreaming, Sinks: 4, Recent: 32, Window: 8, Kernel: 1, Budget: 36}, "streaming does not use window"},
		{"streaming budget missing", Policy{Method: MethodStreaming, Sinks: 4, Recent: 32}, "budget 0 != sinks 4 + recent 32"},
		{"snapkv sinks", Policy{Method: MethodSnapKV, Sinks: 4, TopK: 8, Window: 8, Kernel: 5, Budget: 16}, "snapkv does not use sinks"},
		{"snapkv adaptive", Policy{Method: MethodSnapKV, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Adaptive: true}, "does not use adaptive"},
		{"snapstream even kernel", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 2, Budget: 12}, "kernel=2"},
		{"snapstream ok", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 3, Budget: 12}, ""},
		{"snapkv rerotate", Policy{Method: MethodSnapKV, TopK: 8, Window: 8, Kernel: 5, Budget: 16, Rerotate: true}, "snapkv does not use rerotate"},
		{"full rerotate", Policy{Method: MethodFull, Rerotate: true}, "full does not use rerotate"},
		{"knorm ok", Policy{Method: MethodKNorm, TopK: 8, Budget: 8}, ""},
		{"knorm topk mismatch", Policy{Method: MethodKNorm, TopK: 7, Budget: 8}, "topk 7 != budget 8"},
		{"knorm window", Policy{Method: MethodKNorm, TopK: 8, Budget: 8, Window: 4}, "knorm does not use window"},
		{"knorm rerotate", Policy{Method: MethodKNorm, TopK: 8, Budget: 8, Rerotate: true}, "knorm does not use rerotate"},
		{"too large", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 1 << 40, TopK: 4, Window: 8, Kernel: 3, Budget: 12}, "too large"},
		{"kvquant ok", Policy{Method: MethodKVQuant, Bits: 8, Group: 32}, ""},
		{"kvquant budget", Policy{Method: MethodKVQuant, Bits: 8, Group: 32, Budget: 4}, "kvquant does not use budget"},
		{"kvquant no group", Policy{Method: MethodKVQuant, Bits: 8}, "group=0"},
		{"kvquant adaptive", Policy{Method: MethodKVQuant, Bits: 8, Group: 32, Adaptive: true}, "kvquant does not use adaptive"},
		{"full bits", Policy{Method: MethodFull, Bits: 4}, "full does not use bits"},
		{"snapstream group", Policy{Method: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 3, Budget: 12, Group: 32}, "snapstream does not use group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalized(t *testing.T) {
	// The conformance reference lists window and kernel for streaming; Normalized drops them.
	p := Policy{Method: MethodStreaming, Sinks: 4, Recent: 32, Window: 8, Kernel: 1}.Normalized()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.String() != "streaming:sinks=4,recent=32" {
		t.Fatalf("got %s", p)
	}
	q := Policy{Method: MethodSnapStream, Sinks: 4, Recent: 16, TopK: 24, Window: 8, Kernel: 5}.Normalized()
	if q != MustParse("snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5") {
		t.Fatalf("got %+v", q)
	}
	for _, tt := range []struct {
		p    Policy
		spec string
	}{
		{Policy{Method: MethodH2O, TopK: 8, Recent: 8, Window: 4, Sinks: 2}, "h2o:budget=16"},
		{Policy{Method: MethodTOVA, Budget: 16, TopK: 3}, "tova:budget=16"},
		{Policy{Method: MethodPyramidKV, Base: MethodSnapKV, Sinks: 4, Recent: 3, TopK: 48, Window: 16, Kernel: 5, Beta: 20, Safeguard: 7}, "pyramidkv:topk=48,window=16,kernel=5"},
		{Policy{Method: MethodAdaKV, Base: MethodSnapStream, Sinks: 4, Recent: 16, TopK: 24, Window: 8, Kernel: 5, Beta: 3, Safeguard: 20},
			"adakv:base=snapstream,sinks=4,recent=16,topk=24,window=8,kernel=5"},
	} {
		if got := tt.p.Normalized(); got != MustParse(tt.spec) {
			t.Errorf("Normalized(%+v) = %+v, want %s", tt.p, got, tt.spec)
		}
	}
}

func TestCapacityAndSplit(t *testing.T) {
	tests := []struct {
		spec         string
		L, maxNew    int
		wantCapacity int
		wantSplit    string
	}{
		{"full", 1000, 24, 1024, ""},
		{"streaming:sinks=4,recent=1024", 100000, 500, 1028, "S=4 R=1024"},
		{"snapkv:topk=2048,window=32,kernel=5", 100000, 500, 2580, "K=2048 W=32 k=5 (+decoded)"},
		{"snapstream:budget=4096", 100000, 500, 4096, "S=4 K=2044 R=2048 W=32 k=5"},
		{"snapstream:budget=4096,adaptive=true", 100, 5000, 4096, "S=4 K=2044 R=2048 W=32 k=5 adaptive"},
		{"snapstream:budget=4096,rerotate=true", 100000, 500, 4096, "S=4 K=2044 R=2048 W=32 k=5 rerotate"},
		{"streaming:sinks=4,recent=60,rerotate=true", 1000, 50, 64, "S=4 R=60 rerotate"},
		{"knorm:budget=256", 1000, 48, 304, "K=256 (+decoded)"},
		{"knorm:budget=256", 100, 48, 304, "K=256 (+decoded)"},
		{"kvquant:bits=4", 1000, 24, 1024, "all, 4-bit K/V, group 32"},
		{"h2o:budget=256", 1000, 48, 256, "H=128 R=128 (evicting)"},
		{"h2o:budget=256,recent=16", 10, 48, 256, "H=240 R=16 (evicting)"},
		{"tova:budget=256", 1000, 48, 256, "B=256 (evicting)"},
		{"pyramidkv:budget=256", 1000, 48, 304, "K=224 W=32 k=5 (+decoded), K per layer (beta=20)"},
		{"pyramidkv:budget=256,base=snapstream,beta=5", 1000, 48, 256, "S=4 K=124 R=128 W=32 k=5, K per layer (beta=5)"},
		{"adakv:budget=256", 1000, 48, 304, "K=224 W=32 k=5 (+decoded), K per head (safeguard=20%)"},
		{"adakv:budget=256,base=snapstream", 10, 48, 256, "S=4 K=124 R=128 W=32 k=5, K per head (safeguard=20%)"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p := MustParse(tt.spec)
			if got := p.Capacity(tt.L, tt.maxNew); got != tt.wantCapacity {
				t.Errorf("Capacity = %d, want %d", got, tt.wantCapacity)
			}
			plan, err := p.Plan(tt.L, tt.maxNew)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Capacity != tt.wantCapacity {
				t.Errorf("Plan.Capacity = %d, want %d", plan.Capacity, tt.wantCapacity)
			}
			if got := p.Split(); got != tt.wantSplit {
				t.Errorf("Split = %q, want %q", got, tt.wantSplit)
			}
		})
	}
}

func TestKVBytes(t *testing.T) {
	// DeepSeek-R1-Distill-Llama-70B-like shape: 80 layers, 8 KV heads, head_dim 128, bf16, 32K slots.
	if got, want := KVBytes(32768, 80, 8, 128, 2), int64(10737418240); got != want {
		t.Fatalf("KVBytes = %d, want %d (10 GiB)", got, want)
	}
	if got := KVBytes(0, 80, 8, 128, 2); got != 0 {
		t.Fatalf("KVBytes with no slots = %d", got)
	}
	// Policy.KVBytes: the float formula for every method but kvquant, the packed size for kvquant (the same
	// 32K slots at 4 bits, group 32: per layer and KV head 1024 key groups of 32 rows x 64 B and 128 x 4 B of
	// parameters, 32 staged keys x 128 x 2 B, 32768 value rows x (64 B + 4 groups x 4 B)).
	if got, want := MustParse("snapstream:budget=32768").KVBytes(32768, 80, 8, 128, 2), KVBytes(32768, 80, 8, 128, 2); got != want {
		t.Errorf("snapstream KVBytes = %d, want %d", got, want)
	}
	want := int64(80*8) * (1024*32*64 + 1024*128*4 + 32*128*2 + 32768*64 + 32768*4*4)
	if got := MustParse("kvquant:bits=4").KVBytes(32768, 80, 8, 128, 2); got != want {
		t.Errorf("kvquant:bits=4 KVBytes = %d, want %d", got, want)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts validates and round-trips through String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"full", "streaming:sinks=4,recent=1024", "snapkv:topk=2048,window=32,kernel=5", "snapstream:budget=4096",
		"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5,adaptive=true", "snapstream:budget=4096,window=64",
		"snapstream:budget=7", "streaming:budget=9", "snapkv:budget=100", "snapstream:budget=100,topk=3",
		"snapstream:sinks=0,recent=0,topk=1,window=1,kernel=1", "full:", "snapstream:budget=-1", "x:y=z,,",
		"full@int8", "snapstream:budget=64@int8", "full@int8@int8", "@",
		"streaming:recent=8,rerotate=true", "snapstream:budget=64,adaptive=true,rerotate=true@int8", "knorm:budget=256", "knorm:budget=0",
		"kvquant:bits=4", "kvquant:bits=8,group=128@int8", "kvquant:bits=3", "kvquant:group=0,bits=2",
		"h2o:budget=256", "h2o:budget=9,recent=3@int8", "tova:budget=1", "rkv:budget=64", "pyramidkv:budget=256,beta=4",
		"pyramidkv:base=snapstream,budget=64", "adakv:budget=256,safeguard=0", "adakv:base=snapkv,topk=3,window=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		p, err := Parse(spec)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v which fails Validate: %v", spec, p, err)
		}
		s := p.String()
		q, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", spec, s, err)
		}
		if q != p {
			t.Fatalf("round trip of %q via %q: %+v != %+v", spec, s, q, p)
		}
		if q.String() != s {
			t.Fatalf("String not canonical: %q then %q", s, q.String())
		}
	})
}
