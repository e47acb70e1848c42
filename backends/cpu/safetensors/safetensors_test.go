package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func withHeader(h string, data int) []byte {
	b := make([]byte, 8+len(h)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(h)))
	copy(b[8:], h)
	return b
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"header past end", withHeader("{}", 0)[:9], "past the end"},
		{"not json", withHeader("{x", 0), "not a JSON object"},
		{"dtype", withHeader(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8), `unsupported dtype "I64"`},
		{"offsets count", withHeader(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "2"},
		{"outside", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside"},
		{"shape mismatch", withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12"},
		{"negative dim", withHeader(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0), "bad dimension"},
		{"overlap", withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"metadata", withHeader(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.safetensors", tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.safetensors") {
				t.Fatalf("err = %v, want mention of %q and the file", err, tc.want)
			}
		})
	}
}

func f32Tensor(name string, shape []int, vals ...float32) *Tensor {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: F32, Shape: shape, Data: b}
}

func TestRoundTripAndConvert(t *testing.T) {
	a := f32Tensor("a", []int{2, 2}, 1, -2, 0.5, 3.25)
	bf := &Tensor{Name: "b", DType: BF16, Shape: []int{2}, Data: []byte{0x80, 0x3f, 0x00, 0xc0}} // 1, -2
	h := &Tensor{Name: "h", DType: F16, Shape: []int{3}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}}
	enc, err := Encode([]*Tensor{a, bf, h}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("rt", enc)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	want := map[string][]float32{"a": {1, -2, 0.5, 3.25}, "b": {1, -2}, "h": {1, -2, float32(math.Ldexp(1, -24))}}
	for n, w := range want {
		got := f.Tensors[n].Float32()
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s[%d] = %v, want %v", n, i, got[i], w[i])
			}
		}
	}
	if got := f.Tensors["a"].BF16(); got[0] != 0x3f80 || got[1] != 0xc000 {
		t.Errorf("a as bf16 = %x", got)
	}
	if got := f.Tensors["b"].BF16(); got[0] != 0x3f80 || got[1] != 0xc000 {
		t.Errorf("b as bf16 = %x", got)
	}
}

func TestF32ToBF16Rounding(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7fc00000, 0x7fc0},
	}
	for _, tc := range tests {
		if got := F32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("F32ToBF16(%#x) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestShardedDirAndFS(t *testing.T) {
	s1, _ := Encode([]*Tensor{f32Tensor("x", []int{1}, 1)}, nil)
	s2, _ := Encode([]*Tensor{f32Tensor("y", []int{1}, 2)}, nil)
	ix := `{"metadata":{},"weight_map":{"x":"m-1.safetensors","y":"m-2.safetensors"}}`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m-1.safetensors"), s1, 0o644)
	os.WriteFile(filepath.Join(dir, "m-2.safetensors"), s2, 0o644)
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(ix), 0o644)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if y, err := c.Get("y"); err != nil || y.Float32()[0] != 2 {
		t.Fatalf("y = %v, %v", y, err)
	}
	if _, err := c.Get("z"); err == nil || !strings.Contains(err.Error(), `"z"`) || !strings.Contains(err.Error(), dir) {
		t.Errorf("missing tensor error = %v", err)
	}
	fsys := fstest.MapFS{
		"m/m-1.safetensors": {Data: s1}, "m/m-2.safetensors": {Data: s2},
		"m/" + IndexFile: {Data: []byte(`{"weight_map":{"x":"m-1.safetensors","y":"m-1.safetensors"}}`)},
	}
	if _, err := OpenFS(fsys, "m"); err == nil || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("inconsistent index error = %v", err)
	}
	fsys["m/"+IndexFile] = &fstest.MapFile{Data: []byte(ix)}
	c2, err := OpenFS(fsys, "m")
	if err != nil || len(c2.Names()) != 2 {
		t.Fatalf("OpenFS: %v %v", c2, err)
	}
	fsys["m/"+IndexFile] = &fstest.MapFile{Data: []byte(`{"weight_map":{"x":"../evil"}}`)}
	if _, err := OpenFS(fsys, "m"); err == nil {
		t.Error("path traversal in index accepted")
	}
}

func TestSingleFileDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenDir(dir); err == nil {
		t.Fatal("empty dir accepted")
	}
	b, _ := Encode([]*Tensor{f32Tensor("w", []int{2}, 3, 4)}, nil)
	os.WriteFile(filepath.Join(dir, SingleFile), b, 0o644)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tensors["w"].Float32(); got[1] != 4 {
		t.Errorf("w = %v", got)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

func FuzzParse(f *testing.F) {
	enc, _ := Encode([]*Tensor{f32Tensor("a", []int{2}, 1, 2), {Name: "b", DType: BF16, Shape: []int{1}, Data: []byte{0, 0}}}, map[string]string{"k": "v"})
	f.Add(enc)
	f.Add(withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8))
	f.Add(withHeader(`{"a":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}`, 0))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse("fuzz", b)
		if err != nil {
			return
		}
		for _, tn := range file.Tensors {
			if len(tn.Data) != tn.Len()*tn.DType.Size() {
				t.Fatalf("tensor %q: %d bytes for %v", tn.Name, len(tn.Data), tn.Shape)
			}
			_ = tn.Float32()
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"weight_map":{"x":"m-1.safetensors","y":"m-2.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"x":"../evil"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		shards, wm, err := parseIndex("index", b)
		if err != nil {
			return
		}
		for _, s := range shards {
			if s == "" || strings.ContainsAny(s, "/") {
				t.Fatalf("bad shard %q accepted", s)
			}
		}
		if len(wm) == 0 {
			t.Fatal("empty weight_map accepted")
		}
	})
}
