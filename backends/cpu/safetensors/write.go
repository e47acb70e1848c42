package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
)

// Encode serialises tensors as one safetensors file (tensors laid out in name order, header padded
// with spaces to a multiple of 8 bytes as the reference writer does).
func Encode(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	sorted := append([]*Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	hdr := map[string]any{}
	if metadata != nil {
		hdr["__metadata__"] = metadata
	}
	off := 0
	for _, t := range sorted {
		if want := t.Len() * t.DType.Size(); want != len(t.Data) || t.DType.Size() == 0 {
			return nil, fmt.Errorf("safetensors: tensor %q: %d data bytes for shape %v of %s", t.Name, len(t.Data), t.Shape, t.DType)
		}
		if _, dup := hdr[t.Name]; dup {
			return nil, fmt.Errorf("safetensors: duplicate tensor %q", t.Name)
		}
		hdr[t.Name] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+off)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range sorted {
		out = append(out, t.Data...)
	}
	return out, nil
}
