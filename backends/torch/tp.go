package torch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// noMulticast is added to the environment of a worker of several ranks: NVLink SHARP / multicast stays off
// (snapworker/tp.py sets the same in every rank it starts).
var noMulticast = []string{"NCCL_NVLS_ENABLE=0", "TORCH_SYMM_MEM_DISABLE_MULTICAST=1", "NVSHMEM_DISABLE_NVLS=1"}

// headCounts are the head fields of a config.json (or of its text_config, for models that nest it).
type headCounts struct {
	KVHeads *int        `json:"num_key_value_heads"`
	QHeads  *int        `json:"num_attention_heads"`
	Text    *headCounts `json:"text_config"`
}

// checkTP refuses, before any process starts, a tensor parallelism that does not divide the KV heads of the model
// in dir (config.json): each rank holds whole KV heads and selects for them.
func checkTP(dir string, tp int) error {
	if tp <= 1 {
		return nil
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("torch backend: %w", err)
	}
	var c headCounts
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("torch backend: %s: %v", path, err)
	}
	if c.Text != nil && c.KVHeads == nil && c.QHeads == nil {
		c = *c.Text
	}
	kv, field := c.KVHeads, "num_key_value_heads"
	if kv == nil {
		kv, field = c.QHeads, "num_attention_heads"
	}
	if kv == nil || *kv < 1 {
		return fmt.Errorf("torch backend: %s: no positive num_key_value_heads or num_attention_heads for tp=%d", path, tp)
	}
	if *kv%tp != 0 {
		return &SetupError{Msg: fmt.Sprintf("tp=%d does not divide the model's %d KV heads (%s %s): tensor parallelism "+
			"splits whole KV heads, so tp must divide %d", tp, *kv, path, field, *kv)}
	}
	return nil
}
