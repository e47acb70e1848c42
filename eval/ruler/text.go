package ruler

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// isPySpace reports whether r is whitespace for Python's str.isspace, str.split(), str.strip() and re's \s.
func isPySpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680,
		0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return false
}

// pyStrip is Python's str.strip().
func pyStrip(s string) string { return strings.TrimFunc(s, isPySpace) }

// pyRStrip is Python's str.rstrip().
func pyRStrip(s string) string { return strings.TrimRightFunc(s, isPySpace) }

// pySplit is Python's str.split() with no separator: runs of whitespace separate, no empty fields.
func pySplit(s string) []string { return strings.FieldsFunc(s, isPySpace) }

// collapseSpaces is re.sub(r'\s+', " ", s).
func collapseSpaces(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	in := false
	for _, r := range s {
		if isPySpace(r) {
			if !in {
				b.WriteByte(' ')
			}
			in = true
			continue
		}
		in = false
		b.WriteRune(r)
	}
	return b.String()
}

// pyFind is Python's str.find: the index of sub in s counted in code points, -1 when absent.
func pyFind(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	return utf8.RuneCountInString(s[:i])
}

// pyFormat is Python's str.format with keyword fields only: "{name}" is replaced by vals[name], "{{" and "}}" are
// literal braces. A field that vals lacks is an error (Python's KeyError), so is a lone brace.
func pyFormat(tmpl string, vals map[string]string) (string, error) {
	var b strings.Builder
	b.Grow(len(tmpl))
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && i+1 < len(tmpl) && tmpl[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(tmpl) && tmpl[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("template: single '{' at byte %d", i)
			}
			name := tmpl[i+1 : i+end]
			v, ok := vals[name]
			if !ok {
				return "", fmt.Errorf("template: no value for field {%s}", name)
			}
			b.WriteString(v)
			i += end
		case c == '}':
			return "", fmt.Errorf("template: single '}' at byte %d", i)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// pyFloorDiv is Python's float floor division a // b for b > 0 (fmod-based, as CPython's float_floor_div).
func pyFloorDiv(a, b float64) float64 {
	mod := math.Mod(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div--
	}
	if div == 0 {
		return math.Copysign(0, a/b)
	}
	fl := math.Floor(div)
	if div-fl > 0.5 {
		fl++
	}
	return fl
}

// depths is RULER's DEPTHS: np.round(np.linspace(0, 100, num=40)).astype(int).
var depths = func() []int {
	out := make([]int, 40)
	step := 100.0 / 39
	for i := range out {
		out[i] = int(math.RoundToEven(float64(i) * step))
	}
	out[39] = 100
	return out
}()
