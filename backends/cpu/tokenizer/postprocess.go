package tokenizer

import (
	"encoding/json"
	"fmt"
)

// postProcessorJSON holds the fields of every supported post-processor type.
type postProcessorJSON struct {
	Type   string `json:"type"`
	Single []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Cls        []json.RawMessage `json:"cls"`
	Sep        []json.RawMessage `json:"sep"`
	Processors []json.RawMessage `json:"processors"`
}

// template is what a post-processor adds around one sequence of ids.
type template struct {
	prefix, suffix []int
}

// parsePostProcessor reads tokenizer.json's "post_processor" for single sequences.
// Supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel (adds nothing) and Sequence of those.
func parsePostProcessor(raw json.RawMessage, field string) (template, error) {
	var t template
	if isNull(raw) {
		return t, nil
	}
	var pj postProcessorJSON
	if err := json.Unmarshal(raw, &pj); err != nil {
		return t, fmt.Errorf("%s: %v", field, err)
	}
	switch pj.Type {
	case "ByteLevel":
		return t, nil
	case "Sequence":
		for i, sub := range pj.Processors {
			st, err := parsePostProcessor(sub, fmt.Sprintf("%s.processors[%d]", field, i))
			if err != nil {
				return t, err
			}
			// Each processor wraps the output of the previous one.
			t.prefix = append(append([]int{}, st.prefix...), t.prefix...)
			t.suffix = append(t.suffix, st.suffix...)
		}
		return t, nil
	case "TemplateProcessing":
		seen := false
		for i, piece := range pj.Single {
			switch {
			case piece.Sequence != nil:
				if seen {
					return t, fmt.Errorf("%s.single[%d]: more than one sequence", field, i)
				}
				seen = true
			case piece.SpecialToken != nil:
				st, ok := pj.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return t, fmt.Errorf("%s.single[%d]: special token %q missing from special_tokens", field, i, piece.SpecialToken.ID)
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			default:
				return t, fmt.Errorf("%s.single[%d]: want SpecialToken or Sequence", field, i)
			}
		}
		if !seen {
			return t, fmt.Errorf("%s.single: no sequence", field)
		}
		return t, nil
	case "RobertaProcessing", "BertProcessing":
		cls, err := tokenPairID(pj.Cls, field+".cls")
		if err != nil {
			return t, err
		}
		sep, err := tokenPairID(pj.Sep, field+".sep")
		if err != nil {
			return t, err
		}
		return template{prefix: []int{cls}, suffix: []int{sep}}, nil
	case "":
		return t, fmt.Errorf("%s: missing \"type\"", field)
	}
	return t, fmt.Errorf("%s: unsupported post-processor type %q", field, pj.Type)
}

// tokenPairID reads the id of a ["token", id] pair.
func tokenPairID(pair []json.RawMessage, field string) (int, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("%s: want [token, id]", field)
	}
	var id int
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return 0, fmt.Errorf("%s: %v", field, err)
	}
	return id, nil
}
