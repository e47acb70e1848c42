// Package safetensors reads Hugging Face safetensors checkpoints: single files and sharded
// model.safetensors.index.json sets, memory-mapped from disk or held in memory (go:embed, fs.FS).
//
// The header is bounds-checked: an 8-byte little-endian length, a JSON object of tensors with
// dtype, shape and data_offsets that must agree with each other, stay inside the file and not overlap.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"unsafe"
)

// DType is a tensor element type.
type DType string

// Supported element types.
const (
	BF16 DType = "BF16"
	F16  DType = "F16"
	F32  DType = "F32"
)

// Size is the byte size of one element, or 0 for an unsupported type.
func (d DType) Size() int {
	switch d {
	case BF16, F16:
		return 2
	case F32:
		return 4
	}
	return 0
}

// maxHeader bounds the JSON header (the reference implementation uses 100 MB).
const maxHeader = 100 << 20

// Tensor is one named tensor: its element type, shape and raw little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is one parsed safetensors file. Its tensors alias the underlying bytes.
type File struct {
	Name     string
	Metadata map[string]string
	Tensors  map[string]*Tensor
}

type rawEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Parse parses a whole safetensors file held in b. name is used in error messages.
// The returned tensors alias b.
func Parse(name string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors %s: file is %d bytes, shorter than the 8-byte header length", name, len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeader {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d-byte limit", name, n, maxHeader)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d runs past the end of the %d-byte file", name, n, len(b))
	}
	hdr := b[8 : 8+n]
	data := b[8+n:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("safetensors %s: header is not a JSON object: %v", name, err)
	}
	f := &File{Name: name, Tensors: make(map[string]*Tensor, len(raw))}
	type span struct {
		lo, hi int64
		name   string
	}
	var spans []span
	for key, msg := range raw {
		if key == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors %s: __metadata__ must map strings to strings: %v", name, err)
			}
			continue
		}
		var e rawEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %v", name, key, err)
		}
		dt := DType(e.DType)
		if dt.Size() == 0 {
			return nil, fmt.Errorf("safetensors %s: tensor %q: unsupported dtype %q (want BF16, F16 or F32)", name, key, e.DType)
		}
		if len(e.Offsets) != 2 {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets has %d entries, want 2", name, key, len(e.Offsets))
		}
		elems := int64(1)
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, fmt.Errorf("safetensors %s: tensor %q: bad dimension %d", name, key, d)
			}
			if d != 0 && elems > math.MaxInt64/8/d {
				return nil, fmt.Errorf("safetensors %s: tensor %q: shape %v overflows", name, key, e.Shape)
			}
			elems *= d
			shape[i] = int(d)
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > int64(len(data)) {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets [%d,%d] outside the %d data bytes", name, key, lo, hi, len(data))
		}
		if want := elems * int64(dt.Size()); hi-lo != want {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets span %d bytes, shape %v of %s needs %d", name, key, hi-lo, e.Shape, dt, want)
		}
		f.Tensors[key] = &Tensor{Name: key, DType: dt, Shape: shape, Data: data[lo:hi:hi]}
		if hi > lo {
			spans = append(spans, span{lo, hi, key})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return nil, fmt.Errorf("safetensors %s: tensors %q and %q overlap", name, spans[i-1].name, spans[i].name)
		}
	}
	return f, nil
}

// Float32 converts the tensor to float32 (a new slice).
func (t *Tensor) Float32() []float32 {
	n := t.Len()
	out := make([]float32, n)
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	}
	return out
}

// BF16 returns the tensor as bfloat16 bit patterns. BF16 data is aliased when it is 2-byte aligned
// (no copy); F16 and F32 data is converted (rounded to nearest even).
func (t *Tensor) BF16() []uint16 {
	n := t.Len()
	if t.DType == BF16 && n > 0 && uintptr(unsafe.Pointer(&t.Data[0]))%2 == 0 && littleEndian {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), n)
	}
	out := make([]uint16, n)
	if t.DType == BF16 {
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
		}
		return out
	}
	for i, v := range t.Float32() {
		out[i] = F32ToBF16(v)
	}
	return out
}

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// F32ToBF16 rounds a float32 to bfloat16 (round to nearest even; NaN stays NaN).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16ToF32 converts an IEEE half-precision value to float32.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
