package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Fingerprint hashes config.json and every tensor's name, dtype, shape and data (sampled: the first and last 4 KiB
// and the length) into 12 hex digits, so that a backend's identity changes with the weights without reading them all.
func Fingerprint(cfg []byte, ck *Checkpoint) string {
	h := sha256.New()
	h.Write(cfg)
	var n [8]byte
	for _, name := range ck.Names() {
		t := ck.Tensors[name]
		fmt.Fprintf(h, "%s %s %v\n", name, t.DType, t.Shape)
		binary.LittleEndian.PutUint64(n[:], uint64(len(t.Data)))
		h.Write(n[:])
		k := min(len(t.Data), 4096)
		h.Write(t.Data[:k])
		h.Write(t.Data[len(t.Data)-k:])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
