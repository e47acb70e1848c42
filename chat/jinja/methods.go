package jinja

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Python methods templates call on strings, dicts and lists. Methods that modify a list or dict
// (append, pop, update, ...) are refused as the immutable sandbox refuses them (SecurityError).

var strMethods = setOf("strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
	"replace", "upper", "lower", "title", "capitalize", "swapcase", "casefold", "find", "rfind", "index", "rindex",
	"count", "join", "format", "center", "ljust", "rjust", "zfill", "isdigit", "isalpha", "isalnum", "isspace",
	"islower", "isupper", "istitle", "isdecimal", "isnumeric", "isidentifier", "isascii", "isprintable",
	"partition", "rpartition", "removeprefix", "removesuffix", "expandtabs")

var dictMethods = setOf("items", "keys", "values", "get", "copy")

var unsafeDictMethods = setOf("clear", "pop", "popitem", "setdefault", "update")

var listMethods = setOf("index", "count", "copy")

var unsafeListMethods = setOf("append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// bindArgs maps positional and keyword arguments onto params as a Python function does; kwOK says
// whether the function takes keyword arguments. Absent arguments are reported in have.
func bindArgs(fname string, params []string, required int, kwOK bool, args []any, kwargs []KwArg) (vals []any, have []bool, err error) {
	vals = make([]any, len(params))
	have = make([]bool, len(params))
	if len(args) > len(params) {
		if len(params) == 0 {
			return nil, nil, typeErrorf("%s() takes no arguments (%d given)", fname, len(args))
		}
		return nil, nil, typeErrorf("%s() takes at most %d arguments (%d given)", fname, len(params), len(args))
	}
	for i, a := range args {
		vals[i], have[i] = a, true
	}
	if len(kwargs) > 0 && !kwOK {
		return nil, nil, typeErrorf("%s() takes no keyword arguments", fname)
	}
	for _, k := range kwargs {
		found := false
		for i, p := range params {
			if p == k.Name {
				if have[i] {
					return nil, nil, typeErrorf("%s() got multiple values for argument '%s'", fname, k.Name)
				}
				vals[i], have[i], found = k.Value, true, true
				break
			}
		}
		if !found {
			return nil, nil, typeErrorf("%s() got an unexpected keyword argument '%s'", fname, k.Name)
		}
	}
	for i := 0; i < required; i++ {
		if !have[i] {
			return nil, nil, typeErrorf("%s() missing required argument '%s' (pos %d)", fname, params[i], i+1)
		}
	}
	return vals, have, nil
}

func (st *state) callMethod(recv any, name string, args []any, kwargs []KwArg) (any, error) {
	switch r := recv.(type) {
	case string:
		return st.strMethod(r, false, name, args, kwargs)
	case Markup:
		return st.strMethod(string(r), true, name, args, kwargs)
	case *Dict:
		return dictMethod(r, name, args, kwargs)
	case []any:
		return seqMethod(r, "list", name, args, kwargs)
	case Tuple:
		return seqMethod(r, "tuple", name, args, kwargs)
	case float64:
		if _, _, err := bindArgs("float.is_integer", nil, 0, false, args, kwargs); err != nil {
			return nil, err
		}
		return r == float64(int64(r)), nil
	case *LoopContext:
		if len(kwargs) > 0 {
			return nil, typeErrorf("%s() takes no keyword arguments", name)
		}
		if name == "cycle" {
			if len(args) == 0 {
				return nil, typeErrorf("no items for cycling given")
			}
			return args[r.index%len(args)], nil
		}
		val := any(Tuple(args))
		if len(args) == 1 {
			val = args[0]
		}
		if r.hasLast && pyEqual(r.changed, val) {
			return false, nil
		}
		r.changed, r.hasLast = val, true
		return true, nil
	case *Cycler:
		if name == "reset" {
			r.pos = 0
			return nil, nil
		}
		v := r.items[r.pos]
		r.pos = (r.pos + 1) % len(r.items)
		return v, nil
	}
	return nil, typeErrorf("'%s' object has no method %s", pyTypeName(recv), name)
}

func dictMethod(d *Dict, name string, args []any, kwargs []KwArg) (any, error) {
	switch name {
	case "items", "keys", "values":
		if _, _, err := bindArgs("dict."+name, nil, 0, false, args, kwargs); err != nil {
			return nil, err
		}
		return &DictView{d, name}, nil
	case "get":
		v, _, err := bindArgs("get", []string{"key", "default"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		if _, err := hashKey(v[0]); err != nil {
			return nil, err
		}
		if x, ok := d.Get(v[0]); ok {
			return x, nil
		}
		return v[1], nil
	case "copy":
		if _, _, err := bindArgs("dict.copy", nil, 0, false, args, kwargs); err != nil {
			return nil, err
		}
		return d.copyDict(), nil
	}
	return nil, typeErrorf("dict has no method %s", name)
}

func seqMethod(items []any, typ, name string, args []any, kwargs []KwArg) (any, error) {
	switch name {
	case "copy":
		if _, _, err := bindArgs(typ+".copy", nil, 0, false, args, kwargs); err != nil {
			return nil, err
		}
		return append([]any{}, items...), nil
	case "count":
		v, _, err := bindArgs(typ+".count", []string{"value"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		n := int64(0)
		for _, it := range items {
			if pyEqual(it, v[0]) {
				n++
			}
		}
		return n, nil
	case "index":
		v, have, err := bindArgs(typ+".index", []string{"value", "start", "stop"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		lo, hi, err := spanArgs(len(items), v[1], have[1], v[2], have[2])
		if err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			if pyEqual(items[i], v[0]) {
				return int64(i), nil
			}
		}
		if typ == "tuple" {
			return nil, valueErrorf("tuple.index(x): x not in tuple")
		}
		return nil, valueErrorf("%s is not in list", pyRepr(v[0]))
	}
	return nil, typeErrorf("%s has no method %s", typ, name)
}

// spanArgs resolves optional start and end arguments (Python slice rules) against a length.
func spanArgs(n int, start any, hasStart bool, end any, hasEnd bool) (int, int, error) {
	lo, hi := 0, n
	conv := func(v any, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		i, ok := toInt(v)
		if !ok {
			return 0, typeErrorf("slice indices must be integers or None or have an __index__ method")
		}
		if i < 0 {
			i += int64(n)
			if i < 0 {
				i = 0
			}
		}
		if i > int64(n) {
			i = int64(n)
		}
		return int(i), nil
	}
	var err error
	if hasStart {
		if lo, err = conv(start, 0); err != nil {
			return 0, 0, err
		}
	}
	if hasEnd {
		if hi, err = conv(end, n); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

func wantStr(fname string, v any) (string, error) {
	if s, ok := strOf(v); ok {
		return s, nil
	}
	return "", typeErrorf("%s arg must be None or str", fname)
}

func (st *state) strMethod(s string, markup bool, name string, args []any, kwargs []KwArg) (any, error) {
	ret := func(r string) any {
		if markup {
			return Markup(r)
		}
		return r
	}
	noArgs := func() error {
		_, _, err := bindArgs("str."+name, nil, 0, false, args, kwargs)
		return err
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		v, _, err := bindArgs(name, []string{"chars"}, 0, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		cut := pyIsSpace
		if v[0] != nil {
			chars, err := wantStr(name, v[0])
			if err != nil {
				return nil, err
			}
			cut = func(r rune) bool { return strings.ContainsRune(chars, r) }
		}
		switch name {
		case "strip":
			return ret(strings.TrimFunc(s, cut)), nil
		case "lstrip":
			return ret(strings.TrimLeftFunc(s, cut)), nil
		}
		return ret(strings.TrimRightFunc(s, cut)), nil
	case "split", "rsplit":
		v, _, err := bindArgs(name, []string{"sep", "maxsplit"}, 0, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		maxsplit := int64(-1)
		if v[1] != nil {
			m, ok := toInt(v[1])
			if !ok {
				return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(v[1]))
			}
			maxsplit = m
		}
		var parts []string
		if v[0] == nil {
			parts = splitWhitespace(s, int(maxsplit), name == "rsplit")
		} else {
			sep, ok := strOf(v[0])
			if !ok {
				return nil, typeErrorf("must be str or None, not %s", pyTypeName(v[0]))
			}
			if sep == "" {
				return nil, valueErrorf("empty separator")
			}
			parts = splitSep(s, sep, int(maxsplit), name == "rsplit")
		}
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = ret(p)
		}
		return out, nil
	case "splitlines":
		v, _, err := bindArgs(name, []string{"keepends"}, 0, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, l := range splitLines(s, truthy(v[0])) {
			out = append(out, ret(l))
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case "startswith", "endswith":
		v, have, err := bindArgs(name, []string{"prefix", "start", "end"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		rs := []rune(s)
		lo, hi, err := spanArgs(len(rs), v[1], have[1], v[2], have[2])
		if err != nil {
			return nil, err
		}
		if lo > len(rs) {
			return false, nil
		}
		sub := ""
		if lo < hi {
			sub = string(rs[lo:hi])
		}
		var cands []any
		switch p := v[0].(type) {
		case Tuple:
			cands = p
		case string, Markup:
			cands = []any{p}
		default:
			return nil, typeErrorf("%s first arg must be str or a tuple of str, not %s", name, pyTypeName(v[0]))
		}
		for _, c := range cands {
			cs, ok := strOf(c)
			if !ok {
				return nil, typeErrorf("tuple for %s must only contain str, not %s", name, pyTypeName(c))
			}
			if (name == "startswith" && strings.HasPrefix(sub, cs)) || (name == "endswith" && strings.HasSuffix(sub, cs)) {
				return true, nil
			}
		}
		return false, nil
	case "replace":
		v, _, err := bindArgs(name, []string{"old", "new", "count"}, 2, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		old, ok1 := strOf(v[0])
		nw, ok2 := strOf(v[1])
		if !ok1 || !ok2 {
			return nil, typeErrorf("replace() argument must be str")
		}
		n := int64(-1)
		if v[2] != nil {
			var ok bool
			if n, ok = toInt(v[2]); !ok {
				return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(v[2]))
			}
		}
		return ret(strings.Replace(s, old, nw, int(n))), nil
	case "upper":
		return ret(pyUpper(s)), noArgs()
	case "lower":
		return ret(pyLower(s)), noArgs()
	case "casefold":
		return ret(strings.ReplaceAll(pyLower(s), "ß", "ss")), noArgs()
	case "title":
		return ret(pyTitle(s)), noArgs()
	case "capitalize":
		return ret(pyCapitalize(s)), noArgs()
	case "swapcase":
		var sb strings.Builder
		for _, r := range s {
			switch {
			case unicode.IsUpper(r):
				sb.WriteString(pyLower(string(r)))
			case unicode.IsLower(r):
				sb.WriteString(pyUpper(string(r)))
			default:
				sb.WriteRune(r)
			}
		}
		return ret(sb.String()), noArgs()
	case "find", "rfind", "index", "rindex", "count":
		v, have, err := bindArgs(name, []string{"sub", "start", "end"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		sub, ok := strOf(v[0])
		if !ok {
			return nil, typeErrorf("must be str, not %s", pyTypeName(v[0]))
		}
		rs := []rune(s)
		lo, hi, err := spanArgs(len(rs), v[1], have[1], v[2], have[2])
		if err != nil {
			return nil, err
		}
		if hi < lo {
			if name == "count" {
				return int64(0), nil
			}
			if name == "index" || name == "rindex" {
				return nil, valueErrorf("substring not found")
			}
			return int64(-1), nil
		}
		window := string(rs[lo:hi])
		if name == "count" {
			if sub == "" {
				return int64(hi - lo + 1), nil
			}
			return int64(strings.Count(window, sub)), nil
		}
		var at int
		if name == "find" || name == "index" {
			at = strings.Index(window, sub)
		} else {
			at = strings.LastIndex(window, sub)
		}
		if at < 0 {
			if name == "index" || name == "rindex" {
				return nil, valueErrorf("substring not found")
			}
			return int64(-1), nil
		}
		return int64(lo + utf8.RuneCountInString(window[:at])), nil
	case "join":
		v, _, err := bindArgs(name, []string{"iterable"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		items, err := iterate(v[0])
		if err != nil {
			return nil, typeErrorf("can only join an iterable")
		}
		parts := make([]string, len(items))
		for i, it := range items {
			p, ok := strOf(it)
			if !ok {
				return nil, typeErrorf("sequence item %d: expected str instance, %s found", i, pyTypeName(it))
			}
			parts[i] = p
		}
		return ret(strings.Join(parts, s)), nil
	case "format":
		out, err := st.strFormat(s, args, kwargs)
		return ret(out), err
	case "center", "ljust", "rjust":
		v, _, err := bindArgs(name, []string{"width", "fillchar"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		w, ok := toInt(v[0])
		if !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(v[0]))
		}
		fill := " "
		if v[1] != nil {
			f, ok := strOf(v[1])
			if !ok || utf8.RuneCountInString(f) != 1 {
				return nil, typeErrorf("The fill character must be exactly one character long")
			}
			fill = f
		}
		return ret(pad(s, int(w), fill, name)), nil
	case "zfill":
		v, _, err := bindArgs(name, []string{"width"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		w, ok := toInt(v[0])
		if !ok {
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(v[0]))
		}
		n := utf8.RuneCountInString(s)
		if int(w) <= n {
			return ret(s), nil
		}
		zeros := strings.Repeat("0", int(w)-n)
		if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
			return ret(s[:1] + zeros + s[1:]), nil
		}
		return ret(zeros + s), nil
	case "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "istitle", "isdecimal", "isnumeric",
		"isidentifier", "isascii", "isprintable":
		if err := noArgs(); err != nil {
			return nil, err
		}
		return strPredicate(name, s), nil
	case "partition", "rpartition":
		v, _, err := bindArgs(name, []string{"sep"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		sep, ok := strOf(v[0])
		if !ok {
			return nil, typeErrorf("must be str, not %s", pyTypeName(v[0]))
		}
		if sep == "" {
			return nil, valueErrorf("empty separator")
		}
		var i int
		if name == "partition" {
			i = strings.Index(s, sep)
		} else {
			i = strings.LastIndex(s, sep)
		}
		if i < 0 {
			if name == "partition" {
				return Tuple{ret(s), ret(""), ret("")}, nil
			}
			return Tuple{ret(""), ret(""), ret(s)}, nil
		}
		return Tuple{ret(s[:i]), ret(sep), ret(s[i+len(sep):])}, nil
	case "removeprefix", "removesuffix":
		v, _, err := bindArgs(name, []string{"affix"}, 1, false, args, kwargs)
		if err != nil {
			return nil, err
		}
		a, ok := strOf(v[0])
		if !ok {
			return nil, typeErrorf("%s() argument must be str, not %s", name, pyTypeName(v[0]))
		}
		if name == "removeprefix" {
			return ret(strings.TrimPrefix(s, a)), nil
		}
		return ret(strings.TrimSuffix(s, a)), nil
	case "expandtabs":
		v, _, err := bindArgs(name, []string{"tabsize"}, 0, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		size := int64(8)
		if v[0] != nil {
			var ok bool
			if size, ok = toInt(v[0]); !ok {
				return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(v[0]))
			}
		}
		var sb strings.Builder
		col := 0
		for _, r := range s {
			switch r {
			case '\t':
				if size > 0 {
					n := int(size) - col%int(size)
					sb.WriteString(strings.Repeat(" ", n))
					col += n
				}
			case '\n', '\r':
				sb.WriteRune(r)
				col = 0
			default:
				sb.WriteRune(r)
				col++
			}
		}
		return ret(sb.String()), nil
	}
	return nil, typeErrorf("str has no method %s", name)
}

// splitWhitespace is str.split() and str.rsplit() without a separator.
func splitWhitespace(s string, maxsplit int, fromRight bool) []string {
	rs := []rune(s)
	var out []string
	if !fromRight {
		i := 0
		for {
			for i < len(rs) && pyIsSpace(rs[i]) {
				i++
			}
			if i >= len(rs) {
				break
			}
			if maxsplit >= 0 && len(out) == maxsplit {
				out = append(out, string(rs[i:]))
				break
			}
			j := i
			for j < len(rs) && !pyIsSpace(rs[j]) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		}
		if out == nil {
			out = []string{}
		}
		return out
	}
	i := len(rs)
	for {
		for i > 0 && pyIsSpace(rs[i-1]) {
			i--
		}
		if i <= 0 {
			break
		}
		if maxsplit >= 0 && len(out) == maxsplit {
			out = append(out, string(rs[:i]))
			break
		}
		j := i
		for j > 0 && !pyIsSpace(rs[j-1]) {
			j--
		}
		out = append(out, string(rs[j:i]))
		i = j
	}
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// splitSep is str.split(sep, maxsplit) and str.rsplit(sep, maxsplit).
func splitSep(s, sep string, maxsplit int, fromRight bool) []string {
	if maxsplit < 0 {
		return strings.Split(s, sep)
	}
	if !fromRight {
		return strings.SplitN(s, sep, maxsplit+1)
	}
	var out []string
	for len(out) < maxsplit {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		out = append(out, s[i+len(sep):])
		s = s[:i]
	}
	out = append(out, s)
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out
}

// splitLines is str.splitlines(keepends).
func splitLines(s string, keepends bool) []string {
	var out []string
	rs := []rune(s)
	start := 0
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		isBreak := r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x1c || r == 0x1d || r == 0x1e ||
			r == 0x85 || r == 0x2028 || r == 0x2029
		if !isBreak {
			continue
		}
		end := i + 1
		if r == '\r' && i+1 < len(rs) && rs[i+1] == '\n' {
			end = i + 2
		}
		if keepends {
			out = append(out, string(rs[start:end]))
		} else {
			out = append(out, string(rs[start:i]))
		}
		start = end
		i = end - 1
	}
	if start < len(rs) {
		out = append(out, string(rs[start:]))
	}
	return out
}

func pad(s string, width int, fill, how string) string {
	n := utf8.RuneCountInString(s)
	if width <= n {
		return s
	}
	total := width - n
	left, right := 0, total
	switch how {
	case "rjust":
		left, right = total, 0
	case "center":
		// CPython: left = total/2 + (total & width & 1)
		left = total/2 + (total & width & 1)
		right = total - left
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, right)
}

// pyUpper and pyLower are str.upper and str.lower, with the full case mappings Go's simple ones lack.
func pyUpper(s string) string {
	if isASCII(s) {
		return strings.ToUpper(s)
	}
	var sb strings.Builder
	for _, r := range s {
		if full, ok := upperSpecial[r]; ok {
			sb.WriteString(full)
			continue
		}
		sb.WriteRune(unicode.ToUpper(r))
	}
	return sb.String()
}

var upperSpecial = map[rune]string{'ß': "SS", 'ﬀ': "FF", 'ﬁ': "FI", 'ﬂ': "FL", 'ﬃ': "FFI", 'ﬄ': "FFL", 'ﬅ': "ST",
	'ﬆ': "ST", '\u0149': "\u02bcN", '\u01f0': "J\u030c", '\u0390': "\u0399\u0308\u0301", '\u03b0': "\u03a5\u0308\u0301",
	'\u0587': "\u0535\u0552"}

func pyLower(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	var sb strings.Builder
	for _, r := range s {
		if r == '\u0130' {
			sb.WriteString("i\u0307")
			continue
		}
		sb.WriteRune(unicode.ToLower(r))
	}
	return sb.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isCased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

// pyTitle is str.title: the first cased character after an uncased one is titlecased, the others lowered.
func pyTitle(s string) string {
	var sb strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			sb.WriteString(pyLower(string(r)))
		} else {
			sb.WriteRune(unicode.ToTitle(r))
		}
		prevCased = isCased(r)
	}
	return sb.String()
}

// pyCapitalize is str.capitalize: the first character titlecased, the rest lowered.
func pyCapitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToTitle(r)) + pyLower(s[size:])
}

func strPredicate(name, s string) bool {
	rs := []rune(s)
	all := func(f func(rune) bool) bool {
		if len(rs) == 0 {
			return false
		}
		for _, r := range rs {
			if !f(r) {
				return false
			}
		}
		return true
	}
	switch name {
	case "isdigit", "isdecimal":
		return all(unicode.IsDigit)
	case "isnumeric":
		return all(func(r rune) bool { return unicode.IsNumber(r) })
	case "isalpha":
		return all(unicode.IsLetter)
	case "isalnum":
		return all(func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) })
	case "isspace":
		return all(pyIsSpace)
	case "isascii":
		return isASCII(s)
	case "isprintable":
		for _, r := range rs {
			if !pyPrintable(r) {
				return false
			}
		}
		return true
	case "isidentifier":
		return len(rs) > 0 && isNameStart(rs[0]) && all(isNameCont)
	case "islower", "isupper":
		cased := false
		for _, r := range rs {
			if (name == "islower" && (unicode.IsUpper(r) || unicode.IsTitle(r))) || (name == "isupper" && (unicode.IsLower(r) || unicode.IsTitle(r))) {
				return false
			}
			cased = cased || isCased(r)
		}
		return cased
	case "istitle":
		cased, prevCased := false, false
		for _, r := range rs {
			switch {
			case unicode.IsUpper(r) || unicode.IsTitle(r):
				if prevCased {
					return false
				}
				prevCased, cased = true, true
			case unicode.IsLower(r):
				if !prevCased {
					return false
				}
				prevCased, cased = true, true
			default:
				prevCased = false
			}
		}
		return cased
	}
	return false
}
