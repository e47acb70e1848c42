package ruler

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/snapeval/snapeval/internal/pytext"
)

// isPySpace, pyStrip and pySplit are Python's str.isspace(), str.strip() and str.split() (package pytext).
var (
	isPySpace = pytext.IsSpace
	pyStrip   = pytext.Strip
	pySplit   = pytext.Split
)

// pyRStrip is Python's str.rstrip().
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pytext.IsSpace) }

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
