package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParseIDs reads token ids written as a JSON array ("[1, 2, 3]"), as a JSON object {"ids": [...]}
// (what `snapeval tokenize` prints), or separated by commas and/or whitespace ("1,2 3").
// Empty input gives no ids.
func ParseIDs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var obj struct {
			IDs *[]int `json:"ids"`
		}
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return nil, fmt.Errorf("token ids: invalid JSON object: %v", err)
		}
		if obj.IDs == nil {
			return nil, fmt.Errorf("token ids: JSON object without \"ids\"")
		}
		return *obj.IDs, nil
	}
	if strings.HasPrefix(s, "[") {
		var ids []int
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, fmt.Errorf("token ids: invalid JSON array: %v", err)
		}
		return ids, nil
	}
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	ids := make([]int, 0, len(fields))
	for i, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("token ids: item %d: %q is not an integer", i+1, f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
