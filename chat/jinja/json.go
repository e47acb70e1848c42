package jinja

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// fToJSON is the tojson filter transformers installs: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False).
func fToJSON(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("tojson", []string{"ensure_ascii", "indent", "separators", "sort_keys"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	d := dumper{ensureASCII: have[0] && truthy(a[0]), sortKeys: truthy(a[3]), itemSep: ", ", keySep: ": "}
	if a[1] != nil {
		switch x := a[1].(type) {
		case string:
			d.indent, d.hasIndent = x, true
		case bool, int64:
			n, _ := toInt(x)
			d.indent, d.hasIndent = strings.Repeat(" ", int(max(n, 0))), true
		default:
			return nil, typeErrorf("can't multiply sequence by non-int of type '%s'", pyTypeName(a[1]))
		}
		d.itemSep = ","
	}
	if a[2] != nil {
		seps, err := iterate(a[2])
		if err != nil || len(seps) != 2 {
			return nil, valueErrorf("separators must be a (item_separator, key_separator) pair")
		}
		is, ok1 := strOf(seps[0])
		ks, ok2 := strOf(seps[1])
		if !ok1 || !ok2 {
			return nil, typeErrorf("separators must be strings")
		}
		d.itemSep, d.keySep = is, ks
	}
	var sb strings.Builder
	if err := d.dump(&sb, v, 0); err != nil {
		return nil, err
	}
	return sb.String(), nil
}

type dumper struct {
	ensureASCII, sortKeys bool
	indent                string
	hasIndent             bool
	itemSep, keySep       string
}

func (d *dumper) newline(sb *strings.Builder, level int) {
	if d.hasIndent {
		sb.WriteByte('\n')
		sb.WriteString(strings.Repeat(d.indent, level))
	}
}

func (d *dumper) dump(sb *strings.Builder, v any, level int) error {
	if level > 500 {
		return errorf("RecursionError", "maximum recursion depth exceeded while encoding a JSON object")
	}
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
	case bool:
		if x {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case int64:
		sb.WriteString(strconv.FormatInt(x, 10))
	case float64:
		sb.WriteString(jsonFloat(x))
	case string:
		sb.WriteString(jsonString(x, d.ensureASCII))
	case Markup:
		sb.WriteString(jsonString(string(x), d.ensureASCII))
	case []any, Tuple:
		var items []any
		if l, ok := x.([]any); ok {
			items = l
		} else {
			items = x.(Tuple)
		}
		if len(items) == 0 {
			sb.WriteString("[]")
			return nil
		}
		sb.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				sb.WriteString(d.itemSep)
			}
			d.newline(sb, level+1)
			if err := d.dump(sb, it, level+1); err != nil {
				return err
			}
		}
		d.newline(sb, level)
		sb.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			sb.WriteString("{}")
			return nil
		}
		type kv struct {
			k string
			v any
		}
		pairs := make([]kv, 0, x.Len())
		for i, k := range x.keys {
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case Markup:
				ks = string(kk)
			case nil:
				ks = "null"
			case bool:
				ks = map[bool]string{true: "true", false: "false"}[kk]
			case int64:
				ks = strconv.FormatInt(kk, 10)
			case float64:
				ks = jsonFloat(kk)
			default:
				return typeErrorf("keys must be str, int, float, bool or None, not %s", pyTypeName(k))
			}
			pairs = append(pairs, kv{ks, x.vals[i]})
		}
		if d.sortKeys {
			for _, k := range x.keys {
				if _, ok := k.(string); !ok {
					return typeErrorf("'<' not supported between instances of '%s' and 'str'", pyTypeName(k))
				}
			}
			sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
		}
		sb.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				sb.WriteString(d.itemSep)
			}
			d.newline(sb, level+1)
			sb.WriteString(jsonString(p.k, d.ensureASCII))
			sb.WriteString(d.keySep)
			if err := d.dump(sb, p.v, level+1); err != nil {
				return err
			}
		}
		d.newline(sb, level)
		sb.WriteByte('}')
	default:
		return typeErrorf("Object of type %s is not JSON serializable", pyTypeName(v))
	}
	return nil
}

// jsonFloat is float.__repr__ as json.dumps writes it (Infinity and NaN spelled as JavaScript does).
func jsonFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	return formatFloat(f)
}

// jsonString is json.dumps of a str.
func jsonString(s string, ensureASCII bool) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (ensureASCII && r == 0x7f):
				fmt.Fprintf(&sb, `\u%04x`, r)
			case ensureASCII && r > 0x7f:
				if r > 0xffff {
					r1, r2 := utf16.EncodeRune(r)
					fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
				} else {
					fmt.Fprintf(&sb, `\u%04x`, r)
				}
			default:
				sb.WriteRune(r)
			}
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// FromJSON decodes JSON into template values as Python's json.loads does: objects become *Dict (keys in
// document order), arrays []any, integers int64, other numbers float64.
func FromJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("JSON: unexpected data after the value")
	}
	return v, nil
}

func decodeJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > 1000 {
		return nil, fmt.Errorf("JSON: nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("JSON: %w", err)
				}
				k, _ := kt.(string)
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				d.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("JSON: %w", err)
			}
			return d, nil
		case '[':
			out := []any{}
			for dec.More() {
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("JSON: %w", err)
			}
			return out, nil
		}
		return nil, fmt.Errorf("JSON: unexpected %v", t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !strings.Contains(err.Error(), "range") {
			return nil, fmt.Errorf("JSON: bad number %s", s)
		}
		return f, nil
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("JSON: unexpected token %v", tok)
}

// Value converts a Go value to a template value: nil, bool, integers, floats, strings, slices, maps with
// string keys (their keys sorted), *Dict and values that are already template values.
func Value(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, Markup, *Dict, Tuple, Undefined, *Namespace:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := Value(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			c, err := Value(x[k])
			if err != nil {
				return nil, err
			}
			d.Set(k, c)
		}
		return d, nil
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			d.Set(k, x[k])
		}
		return d, nil
	}
	return nil, fmt.Errorf("jinja: cannot use a %T as a template value", v)
}

// ToGo converts a template value back to plain Go values (*Dict becomes map[string]any with its keys as
// text, tuples become []any); it is for callers that inspect template variables.
func ToGo(v any) any {
	switch x := v.(type) {
	case *Dict:
		m := make(map[string]any, x.Len())
		for i, k := range x.keys {
			m[pyStr(k)] = ToGo(x.vals[i])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToGo(e)
		}
		return out
	case Tuple:
		return ToGo([]any(x))
	case Markup:
		return string(x)
	}
	return v
}
