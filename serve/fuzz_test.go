package serve

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzRequest feeds arbitrary bodies to the request parser: a value or a *requestError naming a field, never a panic.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stop":["a"],"seed":-1}`,
		`{"prompt":["x"],"temperature":0.5,"top_p":1,"top_k":-1}`,
		`{"messages":[{"role":"developer","content":[{"type":"text","text":"t"}]}],"stop":"\n"}`,
		`{"prompt":"","n":2}`, `{"messages":[{"role":"user","content":{}}]}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var w wireRequest
		if json.Unmarshal(body, &w) != nil {
			return
		}
		for _, chat := range []bool{true, false} {
			req, err := w.toRequest(chat, 16)
			if err != nil {
				var re *requestError
				if !errors.As(err, &re) || err.Error() == "" {
					t.Fatalf("unclassified error %v", err)
				}
				continue
			}
			if req.Sampling.MaxNew <= 0 || (len(req.Messages) > 0) == (req.Prompt != "") {
				t.Fatalf("invalid request accepted: %+v", req)
			}
		}
	})
}
