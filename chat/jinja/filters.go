package jinja

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type filterFunc func(st *state, v any, args []any, kwargs []KwArg) (any, error)

// filters are Jinja2's built-in filters, with tojson replaced as transformers replaces it.
var filters map[string]filterFunc

// jinjaOnlyFilters are Jinja2 filters this engine does not implement: a template that uses one is refused.
var jinjaOnlyFilters = setOf("random", "urlize", "wordwrap", "xmlattr", "urlencode", "filesizeformat", "pprint",
	"striptags", "groupby")

func init() {
	filters = map[string]filterFunc{
		"abs": fAbs, "attr": fAttr, "batch": fBatch, "capitalize": strFilter(pyCapitalize), "center": fCenter,
		"count": fLength, "d": fDefault, "default": fDefault, "dictsort": fDictsort, "e": fEscape, "escape": fEscape,
		"first": fFirst, "float": fFloat, "forceescape": fForceEscape, "format": fFormat, "indent": fIndent,
		"int": fInt, "join": fJoin, "last": fLast, "length": fLength, "list": fList, "lower": strFilter(pyLower),
		"items": fItems, "map": fMap, "min": fMinMax(false), "max": fMinMax(true), "reject": fSelect(false, false),
		"rejectattr": fSelect(false, true), "replace": fReplace, "reverse": fReverse, "round": fRound, "safe": fSafe,
		"select": fSelect(true, false), "selectattr": fSelect(true, true), "slice": fSlice, "sort": fSort,
		"string": fString, "sum": fSum, "title": strFilter(jinjaTitle), "tojson": fToJSON, "trim": fTrim,
		"truncate": fTruncate, "unique": fUnique, "upper": strFilter(pyUpper), "wordcount": fWordcount,
	}
}

// softStr is jinja2's soft_str: strings stay as they are, anything else goes through str().
func softStr(v any) string { return pyStr(v) }

func strFilter(f func(string) string) filterFunc {
	return func(st *state, v any, args []any, kwargs []KwArg) (any, error) {
		if _, _, err := bindArgs("filter", nil, 0, true, args, kwargs); err != nil {
			return nil, err
		}
		return f(softStr(v)), nil
	}
}

var wordBeginning = regexp.MustCompile(`([-\s({\[<]+)`)

// jinjaTitle is the title filter (not str.title): each word's first character upper, the rest lower.
func jinjaTitle(s string) string {
	var sb strings.Builder
	last := 0
	emit := func(item string) {
		if item == "" {
			return
		}
		r, size := utf8.DecodeRuneInString(item)
		sb.WriteString(pyUpper(string(r)) + pyLower(item[size:]))
	}
	for _, m := range wordBeginning.FindAllStringIndex(s, -1) {
		emit(s[last:m[0]])
		emit(s[m[0]:m[1]])
		last = m[1]
	}
	emit(s[last:])
	return sb.String()
}

func fAbs(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	switch x := v.(type) {
	case bool, int64:
		i, _ := toInt(x)
		if i < 0 {
			if i == math.MinInt64 {
				return nil, overflow()
			}
			return -i, nil
		}
		return i, nil
	case float64:
		return math.Abs(x), nil
	case Undefined:
		return nil, x.fail()
	}
	return nil, typeErrorf("bad operand type for abs(): '%s'", pyTypeName(v))
}

func fAttr(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("attr", []string{"name"}, 1, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	name, ok := a[0].(string)
	if !ok {
		return nil, typeErrorf("attribute name must be string, not '%s'", pyTypeName(a[0]))
	}
	if u, ok := v.(Undefined); ok {
		return nil, u.fail()
	}
	if r, ok, err := attribute(v, name); ok || err != nil {
		return r, err
	}
	return undefinedOn(v, name), nil
}

func fBatch(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("batch", []string{"linecount", "fill_with"}, 1, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(a[0])
	if !ok || n <= 0 {
		return nil, valueErrorf("batch linecount must be a positive integer")
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	var out []any
	var tmp []any
	for _, it := range items {
		if int64(len(tmp)) == n {
			out = append(out, tmp)
			tmp = nil
		}
		tmp = append(tmp, it)
	}
	if len(tmp) > 0 {
		if a[1] != nil {
			for int64(len(tmp)) < n {
				tmp = append(tmp, a[1])
			}
		}
		out = append(out, tmp)
	}
	return newGenerator(out), nil
}

func fCenter(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("center", []string{"width"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	w := int64(80)
	if have[0] {
		var ok bool
		if w, ok = toInt(a[0]); !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(a[0]))
		}
	}
	return pad(softStr(v), int(w), " ", "center"), nil
}

func fDefault(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("default", []string{"default_value", "boolean"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	def := any("")
	if have[0] {
		def = a[0]
	}
	if _, ok := v.(Undefined); ok || (truthy(a[1]) && !truthy(v)) {
		return def, nil
	}
	return v, nil
}

func fDictsort(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("dictsort", []string{"case_sensitive", "by", "reverse"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*Dict)
	if !ok {
		if u, isU := v.(Undefined); isU {
			return nil, u.fail()
		}
		return nil, errorf("AttributeError", "'%s' object has no attribute 'items'", pyTypeName(v))
	}
	pos := 0
	if have[1] {
		switch a[1] {
		case "key":
		case "value":
			pos = 1
		default:
			return nil, errorf("FilterArgumentError", "You can only sort by either \"key\" or \"value\"")
		}
	}
	items := (&DictView{d, "items"}).list()
	err = sortValues(items, func(it any) (any, error) {
		k := it.(Tuple)[pos]
		if !truthy(a[0]) {
			k = ignoreCase(k)
		}
		return k, nil
	}, truthy(a[2]))
	return items, err
}

func ignoreCase(v any) any {
	if s, ok := v.(string); ok {
		return pyLower(s)
	}
	return v
}

func fEscape(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if m, ok := v.(Markup); ok {
		return m, nil
	}
	return Markup(htmlEscape(pyStr(v))), nil
}

func fForceEscape(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	return Markup(htmlEscape(pyStr(v))), nil
}

func fFirst(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if g, ok := v.(*Generator); ok {
		if g.used || len(g.items) == 0 {
			g.used = true
			return undefinedHint("No first item, sequence was empty."), nil
		}
		first := g.items[0]
		g.items = g.items[1:]
		return first, nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return undefinedHint("No first item, sequence was empty."), nil
	}
	return items[0], nil
}

func fLast(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	switch v.(type) {
	case *Generator, *DictView:
		return nil, typeErrorf("'%s' object is not reversible", pyTypeName(v))
	}
	items, err := iterate(v)
	if err != nil {
		return nil, typeErrorf("'%s' object is not reversible", pyTypeName(v))
	}
	if len(items) == 0 {
		return undefinedHint("No last item, sequence was empty."), nil
	}
	return items[len(items)-1], nil
}

// pyFloatParse is float(str).
func pyFloatParse(s string) (float64, bool) {
	t := strings.TrimFunc(s, pyIsSpace)
	if strings.Contains(t, "__") || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") {
		return 0, false
	}
	low := strings.ToLower(strings.TrimLeft(t, "+-"))
	switch low {
	case "inf", "infinity", "nan":
	default:
		for _, c := range low {
			if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == '+' || c == '-' || c == '_') {
				return 0, false
			}
		}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, false
	}
	return f, true
}

func fFloat(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("float", []string{"default"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	def := any(0.0)
	if have[0] {
		def = a[0]
	}
	switch x := v.(type) {
	case bool, int64, float64:
		f, _ := toFloat(x)
		return f, nil
	case string, Markup:
		s, _ := strOf(x)
		if f, ok := pyFloatParse(s); ok {
			return f, nil
		}
	case Undefined:
		return nil, x.fail()
	}
	return def, nil
}

// pyIntParse is int(str, base).
func pyIntParse(s string, base int64) (int64, bool) {
	t := strings.TrimFunc(s, pyIsSpace)
	neg := false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg, t = t[0] == '-', t[1:]
	}
	if base == 0 || base == 16 || base == 8 || base == 2 {
		low := strings.ToLower(t)
		for prefix, b := range map[string]int64{"0x": 16, "0o": 8, "0b": 2} {
			if strings.HasPrefix(low, prefix) && (base == 0 || base == b) {
				t, base = t[2:], b
				if strings.HasPrefix(t, "_") {
					t = t[1:]
				}
			}
		}
		if base == 0 {
			base = 10
		}
	}
	if t == "" || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.Contains(t, "__") {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), int(base), 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func fInt(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("int", []string{"default", "base"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	def := any(int64(0))
	if have[0] {
		def = a[0]
	}
	base := int64(10)
	if have[1] {
		b, ok := toInt(a[1])
		if !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(a[1]))
		}
		base = b
	}
	switch x := v.(type) {
	case bool, int64:
		i, _ := toInt(x)
		return i, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return def, nil
		}
		if math.Abs(x) >= 9.2e18 {
			return nil, overflow()
		}
		return int64(x), nil
	case string, Markup:
		s, _ := strOf(x)
		if i, ok := pyIntParse(s, base); ok {
			return i, nil
		}
		if f, ok := pyFloatParse(s); ok && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 9.2e18 {
			return int64(f), nil
		}
	case Undefined:
		return nil, x.fail()
	}
	return def, nil
}

func fFormat(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if len(args) > 0 && len(kwargs) > 0 {
		return nil, errorf("FilterArgumentError", "can't handle positional and keyword arguments at the same time")
	}
	var fa any = Tuple(args)
	if len(kwargs) > 0 {
		d := NewDict()
		for _, k := range kwargs {
			d.Set(k.Name, k.Value)
		}
		fa = d
	}
	return percentFormat(softStr(v), fa)
}

func fIndent(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("indent", []string{"width", "first", "blank"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	ind := "    "
	if have[0] {
		if s, ok := strOf(a[0]); ok {
			ind = s
		} else if n, ok := toInt(a[0]); ok {
			ind = strings.Repeat(" ", int(max(n, 0)))
		} else {
			return nil, typeErrorf("can't multiply sequence by non-int of type '%s'", pyTypeName(a[0]))
		}
	}
	s := softStr(v) + "\n"
	lines := splitLines(s, false)
	var rv string
	if truthy(a[2]) {
		rv = strings.Join(lines, "\n"+ind)
	} else {
		rv = lines[0]
		if len(lines) > 1 {
			rest := make([]string, len(lines)-1)
			for i, l := range lines[1:] {
				if l != "" {
					l = ind + l
				}
				rest[i] = l
			}
			rv += "\n" + strings.Join(rest, "\n")
		}
	}
	if truthy(a[1]) {
		rv = ind + rv
	}
	if _, ok := v.(Markup); ok {
		return Markup(rv), nil
	}
	return rv, nil
}

// attrGetter is jinja2's make_attrgetter: a dotted path ("a.b.0") looked up with getitem.
func attrGetter(attribute any, dflt any, post func(any) any) func(any) (any, error) {
	var parts []any
	switch x := attribute.(type) {
	case nil:
	case string:
		for _, p := range strings.Split(x, ".") {
			if isAllDigits(p) {
				n, _ := strconv.ParseInt(p, 10, 64)
				parts = append(parts, n)
			} else {
				parts = append(parts, p)
			}
		}
	default:
		parts = []any{x}
	}
	return func(item any) (any, error) {
		for _, p := range parts {
			var err error
			if item, err = getitem(item, p); err != nil {
				return nil, err
			}
			if _, ok := item.(Undefined); ok && dflt != nil {
				item = dflt
			}
		}
		if post != nil {
			item = post(item)
		}
		return item, nil
	}
}

func fJoin(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("join", []string{"d", "attribute"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	sep := ""
	if a[0] != nil {
		sep = pyStr(a[0])
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	get := attrGetter(a[1], nil, nil)
	parts := make([]string, len(items))
	for i, it := range items {
		if a[1] != nil {
			if it, err = get(it); err != nil {
				return nil, err
			}
		}
		parts[i] = pyStr(it)
	}
	return strings.Join(parts, sep), nil
}

// length is len(v).
func length(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case Markup:
		return int64(utf8.RuneCountInString(string(x))), nil
	case []any:
		return int64(len(x)), nil
	case Tuple:
		return int64(len(x)), nil
	case *Dict:
		return int64(x.Len()), nil
	case *DictView:
		return int64(x.d.Len()), nil
	case Undefined:
		return 0, nil
	case *LoopContext:
		return int64(len(x.items)), nil
	}
	return 0, typeErrorf("object of type '%s' has no len()", pyTypeName(v))
}

func fLength(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	return length(v)
}

func fList(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	return append([]any{}, items...), nil
}

func fItems(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	switch x := v.(type) {
	case Undefined:
		return newGenerator(nil), nil
	case *Dict:
		return newGenerator((&DictView{x, "items"}).list()), nil
	}
	return nil, typeErrorf("Can only get item pairs from a mapping.")
}

func fMap(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if !truthy(v) {
		return newGenerator(nil), nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	var fn func(any) (any, error)
	if len(args) == 0 && hasKw(kwargs, "attribute") {
		var attr, dflt any
		for _, k := range kwargs {
			switch k.Name {
			case "attribute":
				attr = k.Value
			case "default":
				dflt = k.Value
			default:
				return nil, errorf("FilterArgumentError", "Unexpected keyword argument %s", reprString(k.Name))
			}
		}
		fn = attrGetter(attr, dflt, nil)
	} else {
		if len(args) == 0 {
			return nil, errorf("FilterArgumentError", "map requires a filter argument")
		}
		name, ok := args[0].(string)
		f := filters[name]
		if !ok || f == nil {
			return nil, errorf("TemplateRuntimeError", "No filter named %s.", pyRepr(args[0]))
		}
		rest := args[1:]
		fn = func(item any) (any, error) { return f(st, item, rest, kwargs) }
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		r, err := fn(it)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return newGenerator(out), nil
}

func hasKw(kwargs []KwArg, name string) bool {
	for _, k := range kwargs {
		if k.Name == name {
			return true
		}
	}
	return false
}

func fMinMax(isMax bool) filterFunc {
	return func(st *state, v any, args []any, kwargs []KwArg) (any, error) {
		a, _, err := bindArgs("min", []string{"case_sensitive", "attribute"}, 0, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return undefinedHint("No aggregated item, sequence was empty."), nil
		}
		var post func(any) any
		if !truthy(a[0]) {
			post = ignoreCase
		}
		key := attrGetter(a[1], nil, post)
		best := items[0]
		bk, err := key(best)
		if err != nil {
			return nil, err
		}
		for _, it := range items[1:] {
			k, err := key(it)
			if err != nil {
				return nil, err
			}
			var c int
			if isMax {
				c, err = pyCompare(bk, k, "<")
			} else {
				c, err = pyCompare(k, bk, "<")
			}
			if err != nil {
				return nil, err
			}
			if c < 0 {
				best, bk = it, k
			}
		}
		return best, nil
	}
}

// fSelect is select, reject, selectattr and rejectattr.
func fSelect(keep, byAttr bool) filterFunc {
	return func(st *state, v any, args []any, kwargs []KwArg) (any, error) {
		if !truthy(v) {
			return newGenerator(nil), nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		trans := func(x any) (any, error) { return x, nil }
		off := 0
		if byAttr {
			if len(args) == 0 {
				return nil, errorf("FilterArgumentError", "Missing parameter for attribute name")
			}
			trans = attrGetter(args[0], nil, nil)
			off = 1
		}
		var test func(any) (bool, error)
		if len(args) > off {
			name, _ := args[off].(string)
			t := tests[name]
			if t == nil {
				return nil, errorf("TemplateRuntimeError", "No test named %s.", pyRepr(args[off]))
			}
			rest := args[off+1:]
			test = func(x any) (bool, error) { return t(st, x, rest, kwargs) }
		} else {
			test = func(x any) (bool, error) { return truthy(x), nil }
		}
		var out []any
		for _, it := range items {
			x, err := trans(it)
			if err != nil {
				return nil, err
			}
			ok, err := test(x)
			if err != nil {
				return nil, err
			}
			if ok == keep {
				out = append(out, it)
			}
		}
		return newGenerator(out), nil
	}
}

func fReplace(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("replace", []string{"old", "new", "count"}, 2, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	n := int64(-1)
	if a[2] != nil {
		var ok bool
		if n, ok = toInt(a[2]); !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(a[2]))
		}
	}
	return strings.Replace(pyStr(v), pyStr(a[0]), pyStr(a[1]), int(n)), nil
}

func fReverse(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if s, ok := strOf(v); ok {
		rs := []rune(s)
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
		return string(rs), nil
	}
	kind := "list_reverseiterator"
	switch v.(type) {
	case Tuple:
		kind = "reversed"
	case *Dict:
		kind = "dict_reversekeyiterator"
	case Undefined:
		kind = "reversed"
	case *Generator, *DictView:
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return out, nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, errorf("FilterArgumentError", "argument must be iterable")
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	g := newGenerator(out)
	g.kind = kind
	return g, nil
}

func fRound(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("round", []string{"precision", "method"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	prec := int64(0)
	if have[0] {
		var ok bool
		if prec, ok = toInt(a[0]); !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(a[0]))
		}
	}
	method := "common"
	if have[1] {
		method = pyStr(a[1])
	}
	if method != "common" && method != "ceil" && method != "floor" {
		return nil, errorf("FilterArgumentError", "method must be common, ceil or floor")
	}
	if u, ok := v.(Undefined); ok {
		return nil, u.fail()
	}
	if !isNumber(v) {
		return nil, typeErrorf("type %s doesn't define __round__ method", pyTypeName(v))
	}
	f, _ := toFloat(v)
	if method == "common" {
		if i, ok := toInt(v); ok && prec >= 0 {
			return i, nil
		}
		if prec < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			p := math.Pow(10, float64(-prec))
			r := math.RoundToEven(f/p) * p
			if _, isInt := toInt(v); isInt {
				return int64(r), nil
			}
			return r, nil
		}
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', int(prec), 64), 64)
		return r, nil
	}
	p := math.Pow(10, float64(prec))
	if method == "ceil" {
		return math.Ceil(f*p) / p, nil
	}
	return math.Floor(f*p) / p, nil
}

func fSafe(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	return Markup(pyStr(v)), nil
}

func fSlice(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("slice", []string{"slices", "fill_with"}, 1, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(a[0])
	if !ok || n <= 0 {
		return nil, valueErrorf("slice count must be a positive integer")
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	length := int64(len(items))
	per, extra := length/n, length%n
	offset := int64(0)
	var out []any
	for i := int64(0); i < n; i++ {
		start := offset + i*per
		if i < extra {
			offset++
		}
		end := offset + (i+1)*per
		tmp := append([]any{}, items[start:end]...)
		if a[1] != nil && i >= extra {
			tmp = append(tmp, a[1])
		}
		out = append(out, tmp)
	}
	return newGenerator(out), nil
}

func fSort(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("sort", []string{"reverse", "case_sensitive", "attribute"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	items = append([]any{}, items...)
	var post func(any) any
	if !truthy(a[1]) {
		post = ignoreCase
	}
	var getters []func(any) (any, error)
	if s, ok := a[2].(string); ok {
		for _, part := range strings.Split(s, ",") {
			getters = append(getters, attrGetter(part, nil, post))
		}
	} else {
		getters = append(getters, attrGetter(a[2], nil, post))
	}
	key := func(x any) (any, error) {
		var ks []any
		for _, g := range getters {
			k, err := g(x)
			if err != nil {
				return nil, err
			}
			ks = append(ks, k)
		}
		return ks, nil
	}
	return items, sortValues(items, key, truthy(a[0]))
}

func fString(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	if m, ok := v.(Markup); ok {
		return m, nil
	}
	return pyStr(v), nil
}

func fSum(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("sum", []string{"attribute", "start"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	var total any = int64(0)
	if have[1] {
		total = a[1]
	}
	get := attrGetter(a[0], nil, nil)
	for _, it := range items {
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		if total, err = st.binaryOp("+", total, x); err != nil {
			return nil, err
		}
	}
	return total, nil
}

func fTrim(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("trim", []string{"chars"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	return st.strMethod(softStr(v), false, "strip", []any{a[0]}, nil)
}

func fTruncate(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, have, err := bindArgs("truncate", []string{"length", "killwords", "end", "leeway"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	n, leeway, end := int64(255), int64(5), "..."
	if have[0] {
		n, _ = toInt(a[0])
	}
	if have[2] {
		end = pyStr(a[2])
	}
	if have[3] && a[3] != nil {
		leeway, _ = toInt(a[3])
	}
	s := softStr(v)
	rs := []rune(s)
	endLen := int64(utf8.RuneCountInString(end))
	if n < endLen {
		return nil, errorf("AssertionError", "expected length >= %d, got %d", endLen, n)
	}
	if int64(len(rs)) <= n+leeway {
		return s, nil
	}
	cut := string(rs[:n-endLen])
	if truthy(a[1]) {
		return cut + end, nil
	}
	if i := strings.LastIndex(cut, " "); i >= 0 {
		cut = cut[:i]
	}
	return cut + end, nil
}

func fUnique(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	a, _, err := bindArgs("unique", []string{"case_sensitive", "attribute"}, 0, true, args, kwargs)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	var post func(any) any
	if !truthy(a[0]) {
		post = ignoreCase
	}
	get := attrGetter(a[1], nil, post)
	seen := NewDict()
	var out []any
	for _, it := range items {
		k, err := get(it)
		if err != nil {
			return nil, err
		}
		if _, ok := seen.Get(k); ok {
			continue
		}
		if err := seen.Set(k, true); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return newGenerator(out), nil
}

func fWordcount(st *state, v any, args []any, kwargs []KwArg) (any, error) {
	n := int64(0)
	in := false
	for _, r := range softStr(v) {
		w := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc)
		if w && !in {
			n++
		}
		in = w
	}
	return n, nil
}

// applyFilter evaluates a filter's arguments and applies it to v.
func (st *state) applyFilter(f *filterExpr, v any, sc *scope) (any, error) {
	fn := filters[f.name]
	if fn == nil {
		return nil, errorf("TemplateRuntimeError", "No filter named %s found.", reprString(f.name))
	}
	args, err := st.evalList(f.args, sc)
	if err != nil {
		return nil, err
	}
	var kwargs []KwArg
	for _, k := range f.kwargs {
		kv, err := st.eval(k.value, sc)
		if err != nil {
			return nil, err
		}
		kwargs = append(kwargs, KwArg{k.name, kv})
	}
	r, err := fn(st, v, args, kwargs)
	if err != nil {
		return nil, st.at(err, f.pos)
	}
	return r, nil
}
