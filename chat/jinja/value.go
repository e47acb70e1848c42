package jinja

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The template's values are Go values of these types, each standing for the Python type transformers'
// Jinja2 would hold:
//
//	nil          None
//	bool         bool
//	int64        int
//	float64      float
//	string       str
//	Markup       markupsafe.Markup (a str marked safe)
//	[]any        list
//	Tuple        tuple
//	*Dict        dict (insertion-ordered)
//	*Namespace   jinja2.utils.Namespace
//	Undefined    jinja2.runtime.Undefined
//
// and callables, loop objects, generators and dict views, which templates only reach through globals,
// filters and methods.

// Tuple is a Python tuple.
type Tuple []any

// Markup is a string marked safe (the safe and escape filters); it prints as itself.
type Markup string

// Undefined is Jinja2's default Undefined: it prints as "", is false, iterates as empty, and raises an
// UndefinedError on any other use.
type Undefined struct {
	name   any // the missing name or key
	obj    any // the object it was looked up on (hasObj)
	hasObj bool
	hint   string
	exc    string // exception class raised on use: UndefinedError, or SecurityError for unsafe attributes
}

// message is Undefined._undefined_message.
func (u Undefined) message() string {
	if u.hint != "" {
		return u.hint
	}
	if !u.hasObj {
		return pyRepr(u.name) + " is undefined"
	}
	if s, ok := u.name.(string); ok {
		return pyRepr(objectTypeRepr(u.obj)) + " has no attribute " + pyRepr(s)
	}
	return objectTypeRepr(u.obj) + " has no element " + pyRepr(u.name)
}

// fail is the error any use of u but printing, testing and iterating raises.
func (u Undefined) fail() error {
	exc := u.exc
	if exc == "" {
		exc = "UndefinedError"
	}
	return &Error{Kind: exc, Msg: u.message()}
}

func undefinedName(name string) Undefined { return Undefined{name: name} }

func undefinedOn(obj, name any) Undefined { return Undefined{obj: obj, name: name, hasObj: true} }

func undefinedHint(hint string) Undefined { return Undefined{hint: hint} }

// objectTypeRepr is jinja2.utils.object_type_repr.
func objectTypeRepr(v any) string {
	if v == nil {
		return "None"
	}
	name, module := pyTypeName(v), "builtins"
	switch v.(type) {
	case *Namespace:
		module = "jinja2.utils"
	case Undefined:
		module = "jinja2.runtime"
	case *LoopContext:
		module = "jinja2.runtime"
	case *Macro:
		module = "jinja2.runtime"
	case Markup:
		module = "markupsafe"
	}
	if module == "builtins" {
		return name + " object"
	}
	return module + "." + name + " object"
}

// Namespace is the object namespace() makes: attributes set with {% set ns.attr = value %}.
type Namespace struct{ attrs *Dict }

// Generator is a one-shot iterator (what map, select, reverse and friends return in Python): it is true
// even when empty, has no length, and a second iteration sees nothing.
type Generator struct {
	items []any
	used  bool
	kind  string // the Python type name: generator, list_reverseiterator, ...
}

func newGenerator(items []any) *Generator { return &Generator{items: items, kind: "generator"} }

// take consumes g.
func (g *Generator) take() []any {
	if g.used {
		return nil
	}
	g.used = true
	return g.items
}

// DictView is what dict.items(), keys() and values() return.
type DictView struct {
	d    *Dict
	kind string // items, keys, values
}

func (v *DictView) list() []any {
	out := make([]any, 0, v.d.Len())
	for i, k := range v.d.keys {
		switch v.kind {
		case "items":
			out = append(out, Tuple{k, v.d.vals[i]})
		case "keys":
			out = append(out, k)
		default:
			out = append(out, v.d.vals[i])
		}
	}
	return out
}

// Dict is a Python dict: keys keep their insertion order.
type Dict struct {
	keys []any
	vals []any
	idx  map[any]int
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{idx: map[any]int{}} }

// hashKey is the Go map key that stands for a Python dict key: equal Python keys (1, 1.0, True) share it.
func hashKey(k any) (any, error) {
	switch x := k.(type) {
	case nil, string, int64:
		return x, nil
	case Markup:
		return string(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), nil
		}
		return x, nil
	case Tuple:
		parts := make([]string, len(x))
		for i, e := range x {
			h, err := hashKey(e)
			if err != nil {
				return nil, err
			}
			parts[i] = fmt.Sprintf("%T:%v", h, h)
		}
		return "\x00tuple(" + strings.Join(parts, "\x00") + ")", nil
	}
	return nil, typeErrorf("unhashable type: '%s'", pyTypeName(k))
}

// Len is the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

// Set sets key k (a string, number, bool, None or tuple) to v.
func (d *Dict) Set(k, v any) error {
	h, err := hashKey(k)
	if err != nil {
		return err
	}
	if i, ok := d.idx[h]; ok {
		d.vals[i] = v
		return nil
	}
	d.idx[h] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// Get returns the value of key k.
func (d *Dict) Get(k any) (any, bool) {
	h, err := hashKey(k)
	if err != nil {
		return nil, false
	}
	i, ok := d.idx[h]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []any { return append([]any(nil), d.keys...) }

func (d *Dict) copyDict() *Dict {
	c := &Dict{keys: append([]any(nil), d.keys...), vals: append([]any(nil), d.vals...), idx: make(map[any]int, len(d.idx))}
	for k, v := range d.idx {
		c.idx[k] = v
	}
	return c
}

// pyTypeName is type(v).__name__.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Markup:
		return "Markup"
	case []any:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case Undefined:
		return "Undefined"
	case *Generator:
		return x.kind
	case *DictView:
		return "dict_" + x.kind
	case *LoopContext:
		return "LoopContext"
	case *Macro:
		return "Macro"
	case *Func:
		return "builtin_function_or_method"
	case *boundMethod:
		return "builtin_function_or_method"
	case *Cycler:
		return "Cycler"
	case *Joiner:
		return "Joiner"
	}
	return fmt.Sprintf("%T", v)
}

// truthy is Python's bool(v).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case Markup:
		return x != ""
	case []any:
		return len(x) > 0
	case Tuple:
		return len(x) > 0
	case *Dict:
		return x.Len() > 0
	case *DictView:
		return x.d.Len() > 0
	case Undefined:
		return false
	}
	return true
}

// pyStr is Python's str(v), what {{ v }} prints.
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Markup:
		return string(x)
	case Undefined:
		return ""
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v).
func pyRepr(v any) string {
	var sb strings.Builder
	writeRepr(&sb, v, 0)
	return sb.String()
}

func writeRepr(sb *strings.Builder, v any, depth int) {
	if depth > 100 {
		sb.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil:
		sb.WriteString("None")
	case bool:
		if x {
			sb.WriteString("True")
		} else {
			sb.WriteString("False")
		}
	case int64:
		sb.WriteString(strconv.FormatInt(x, 10))
	case float64:
		sb.WriteString(formatFloat(x))
	case string:
		sb.WriteString(reprString(x))
	case Markup:
		sb.WriteString("Markup(" + reprString(string(x)) + ")")
	case []any:
		sb.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, e, depth+1)
		}
		sb.WriteByte(']')
	case Tuple:
		sb.WriteByte('(')
		for i, e := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeRepr(sb, e, depth+1)
		}
		if len(x) == 1 {
			sb.WriteByte(',')
		}
		sb.WriteByte(')')
	case *Dict:
		writeDictRepr(sb, x, depth)
	case *Namespace:
		sb.WriteString("<Namespace ")
		writeDictRepr(sb, x.attrs, depth)
		sb.WriteByte('>')
	case Undefined:
		sb.WriteString("Undefined")
	case *DictView:
		sb.WriteString("dict_" + x.kind + "(")
		writeRepr(sb, x.list(), depth+1)
		sb.WriteByte(')')
	case *Generator:
		sb.WriteString("<" + x.kind + " object>")
	case *LoopContext:
		fmt.Fprintf(sb, "<LoopContext %d/%d>", x.index+1, len(x.items))
	case *Macro:
		sb.WriteString("<Macro " + reprString(x.name) + ">")
	case *Func:
		sb.WriteString("<function " + x.name + ">")
	case *boundMethod:
		sb.WriteString("<built-in method " + x.name + " of " + pyTypeName(x.recv) + " object>")
	default:
		fmt.Fprintf(sb, "<%s object>", pyTypeName(v))
	}
}

func writeDictRepr(sb *strings.Builder, d *Dict, depth int) {
	sb.WriteByte('{')
	for i, k := range d.keys {
		if i > 0 {
			sb.WriteString(", ")
		}
		writeRepr(sb, k, depth+1)
		sb.WriteString(": ")
		writeRepr(sb, d.vals[i], depth+1)
	}
	sb.WriteByte('}')
}

// formatFloat is Python's repr(float): the shortest digits that round-trip, in positional notation for
// exponents from -5 to 15 and scientific notation otherwise.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp < -4 || exp >= 16 {
		out = digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		out += fmt.Sprintf("e%s%02d", sign, exp)
	} else if exp < 0 {
		out = "0." + strings.Repeat("0", -exp-1) + digits
	} else if len(digits) <= exp+1 {
		out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	} else {
		out = digits[:exp+1] + "." + digits[exp+1:]
	}
	if neg {
		out = "-" + out
	}
	return out
}

// reprString is Python's repr(str): single quotes unless the text holds ' and no ", non-printable
// characters escaped.
func reprString(s string) string {
	quote := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var sb strings.Builder
	sb.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == utf8.RuneError:
			sb.WriteString(`\ufffd`)
		case !pyPrintable(r):
			switch {
			case r < 0x100:
				fmt.Fprintf(&sb, `\x%02x`, r)
			case r < 0x10000:
				fmt.Fprintf(&sb, `\u%04x`, r)
			default:
				fmt.Fprintf(&sb, `\U%08x`, r)
			}
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte(quote)
	return sb.String()
}

// pyPrintable is str.isprintable for one character: not in the categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs,
// space excepted.
func pyPrintable(r rune) bool {
	if r == ' ' {
		return true
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Co, unicode.Zl, unicode.Zp, unicode.Zs) {
		return false
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) // assigned
}

// pyIsSpace is str.isspace for one character.
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1C && r <= 0x20, r == 0x85, r == 0xA0, r == 0x1680,
		r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// toFloat converts a number (bool, int, float) to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// toInt converts a bool or int to int64.
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int64:
		return x, true
	}
	return 0, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case bool, int64, float64:
		return true
	}
	return false
}

func isString(v any) bool {
	switch v.(type) {
	case string, Markup:
		return true
	}
	return false
}

// strOf returns the text of a str or Markup value.
func strOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case Markup:
		return string(x), true
	}
	return "", false
}

// pyEqual is Python's ==.
func pyEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, float64:
		if !isNumber(b) {
			return false
		}
		if xi, ok := toInt(x); ok {
			if yi, ok := toInt(b); ok {
				return xi == yi
			}
		}
		xf, _ := toFloat(x)
		yf, _ := toFloat(b)
		return xf == yf
	case string, Markup:
		xs, _ := strOf(x)
		ys, ok := strOf(b)
		return ok && xs == ys
	case []any:
		y, ok := b.([]any)
		return ok && seqEqual(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && seqEqual(x, y)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, k := range x.keys {
			yv, ok := y.Get(k)
			if !ok || !pyEqual(x.vals[i], yv) {
				return false
			}
		}
		return true
	case Undefined:
		_, ok := b.(Undefined)
		return ok
	case *DictView:
		y, ok := b.(*DictView)
		if !ok || x.kind != y.kind {
			return false
		}
		if x.kind == "values" {
			return x == y
		}
		return pyEqual(x.d, y.d) || (x.kind == "keys" && sameKeys(x.d, y.d))
	}
	return a == b
}

func sameKeys(a, b *Dict) bool {
	if a.Len() != b.Len() {
		return false
	}
	for _, k := range a.keys {
		if _, ok := b.Get(k); !ok {
			return false
		}
	}
	return true
}

func seqEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !pyEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// pyCompare orders a and b as Python's < does: -1, 0 or 1, or a TypeError for unorderable types.
func pyCompare(a, b any, op string) (int, error) {
	if u, ok := a.(Undefined); ok {
		return 0, u.fail()
	}
	if u, ok := b.(Undefined); ok {
		return 0, u.fail()
	}
	if isNumber(a) && isNumber(b) {
		if ai, ok := toInt(a); ok {
			if bi, ok := toInt(b); ok {
				return cmp3(ai < bi, ai > bi), nil
			}
		}
		af, _ := toFloat(a)
		bf, _ := toFloat(b)
		return cmp3(af < bf, af > bf), nil
	}
	if as, ok := strOf(a); ok {
		if bs, ok := strOf(b); ok {
			return strings.Compare(as, bs), nil // UTF-8 byte order is code point order
		}
	}
	var as, bs []any
	switch x := a.(type) {
	case []any:
		if y, ok := b.([]any); ok {
			as, bs = x, y
		}
	case Tuple:
		if y, ok := b.(Tuple); ok {
			as, bs = x, y
		}
	}
	if as != nil || bs != nil || (isSeqPair(a, b)) {
		for i := 0; i < len(as) && i < len(bs); i++ {
			if pyEqual(as[i], bs[i]) {
				continue
			}
			return pyCompare(as[i], bs[i], op)
		}
		return cmp3(len(as) < len(bs), len(as) > len(bs)), nil
	}
	return 0, typeErrorf("'%s' not supported between instances of '%s' and '%s'", op, pyTypeName(a), pyTypeName(b))
}

func isSeqPair(a, b any) bool {
	switch a.(type) {
	case []any:
		_, ok := b.([]any)
		return ok
	case Tuple:
		_, ok := b.(Tuple)
		return ok
	}
	return false
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

// sortValues sorts vs with Python's ordering (a stable sort, as sorted() is).
func sortValues(vs []any, key func(any) (any, error), reverse bool) error {
	keys := make([]any, len(vs))
	for i, v := range vs {
		k, err := key(v)
		if err != nil {
			return err
		}
		keys[i] = k
	}
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	var err error
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := keys[idx[i]], keys[idx[j]]
		if reverse {
			a, b = b, a
		}
		c, e := pyCompare(a, b, "<")
		if e != nil && err == nil {
			err = e
		}
		return c < 0
	})
	if err != nil {
		return err
	}
	out := make([]any, len(vs))
	for i, j := range idx {
		out[i] = vs[j]
	}
	copy(vs, out)
	return nil
}
