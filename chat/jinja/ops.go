package jinja

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

func formatInt(i int64) string { return strconv.FormatInt(i, 10) }

func overflow() error {
	return errorf("OverflowError", "integer result does not fit in 64 bits (this engine's integers are 64-bit)")
}

func unaryOp(op string, v any) (any, error) {
	if u, ok := v.(Undefined); ok {
		return nil, u.fail()
	}
	switch x := v.(type) {
	case bool, int64:
		i, _ := toInt(x)
		if op == "+" {
			return i, nil
		}
		if i == math.MinInt64 {
			return nil, overflow()
		}
		return -i, nil
	case float64:
		if op == "+" {
			return x, nil
		}
		return -x, nil
	}
	return nil, typeErrorf("bad operand type for unary %s: '%s'", op, pyTypeName(v))
}

func unsupportedOperands(op string, a, b any) error {
	if op == "**" {
		op = "** or pow()"
	}
	return typeErrorf("unsupported operand type(s) for %s: '%s' and '%s'", op, pyTypeName(a), pyTypeName(b))
}

// binaryOp is Python's a op b for + - * / // % **.
func (st *state) binaryOp(op string, a, b any) (any, error) {
	if u, ok := a.(Undefined); ok {
		return nil, u.fail()
	}
	if u, ok := b.(Undefined); ok {
		return nil, u.fail()
	}
	ai, aInt := toInt(a)
	bi, bInt := toInt(b)
	af, aNum := toFloat(a)
	bf, bNum := toFloat(b)
	if aNum && bNum {
		return numericOp(op, aInt && bInt, ai, bi, af, bf)
	}
	switch op {
	case "+":
		switch x := a.(type) {
		case string, Markup:
			ys, ok := strOf(b)
			if !ok {
				return nil, typeErrorf("can only concatenate str (not \"%s\") to str", pyTypeName(b))
			}
			xs, _ := strOf(x)
			_, am := a.(Markup)
			_, bm := b.(Markup)
			switch {
			case am && !bm:
				return Markup(xs + htmlEscape(ys)), nil
			case bm && !am:
				return Markup(htmlEscape(xs) + ys), nil
			case am && bm:
				return Markup(xs + ys), nil
			}
			if len(xs)+len(ys) > st.budget {
				return nil, errorf("MemoryError", "a string passed %d bytes", st.budget)
			}
			return xs + ys, nil
		case []any:
			y, ok := b.([]any)
			if !ok {
				return nil, typeErrorf("can only concatenate list (not \"%s\") to list", pyTypeName(b))
			}
			return append(append([]any{}, x...), y...), nil
		case Tuple:
			y, ok := b.(Tuple)
			if !ok {
				return nil, typeErrorf("can only concatenate tuple (not \"%s\") to tuple", pyTypeName(b))
			}
			return append(append(Tuple{}, x...), y...), nil
		}
	case "*":
		if aInt && !bNum {
			return st.repeat(b, ai)
		}
		if bInt && !aNum {
			return st.repeat(a, bi)
		}
		if aNum || bNum {
			if isSeq(a) || isSeq(b) {
				other := a
				if isSeq(a) {
					other = b
				}
				return nil, typeErrorf("can't multiply sequence by non-int of type '%s'", pyTypeName(other))
			}
		}
	case "%":
		if s, ok := strOf(a); ok {
			out, err := percentFormat(s, b)
			if err != nil {
				return nil, err
			}
			if _, m := a.(Markup); m {
				return Markup(out), nil
			}
			return out, nil
		}
	}
	return nil, unsupportedOperands(op, a, b)
}

func isSeq(v any) bool {
	switch v.(type) {
	case string, Markup, []any, Tuple:
		return true
	}
	return false
}

// repeat is sequence * n.
func (st *state) repeat(seq any, n int64) (any, error) {
	if n < 0 {
		n = 0
	}
	switch x := seq.(type) {
	case string, Markup:
		s, _ := strOf(x)
		if int64(len(s))*n > int64(st.budget) || (n > 0 && int64(len(s))*n/n != int64(len(s))) {
			return nil, errorf("MemoryError", "a string passed %d bytes", st.budget)
		}
		r := strings.Repeat(s, int(n))
		if _, m := x.(Markup); m {
			return Markup(r), nil
		}
		return r, nil
	case []any, Tuple:
		var items []any
		if l, ok := x.([]any); ok {
			items = l
		} else {
			items = x.(Tuple)
		}
		if int64(len(items))*n > int64(st.budget)/8 {
			return nil, errorf("MemoryError", "a list passed %d items", st.budget/8)
		}
		out := make([]any, 0, len(items)*int(n))
		for i := int64(0); i < n; i++ {
			out = append(out, items...)
		}
		if _, ok := x.(Tuple); ok {
			return Tuple(out), nil
		}
		return out, nil
	}
	return nil, typeErrorf("can't multiply sequence by non-int of type '%s'", pyTypeName(seq))
}

func numericOp(op string, ints bool, ai, bi int64, af, bf float64) (any, error) {
	switch op {
	case "+":
		if ints {
			r := ai + bi
			if (ai >= 0) == (bi >= 0) && (r >= 0) != (ai >= 0) {
				return nil, overflow()
			}
			return r, nil
		}
		return af + bf, nil
	case "-":
		if ints {
			r := ai - bi
			if (ai >= 0) != (bi >= 0) && (r >= 0) != (ai >= 0) {
				return nil, overflow()
			}
			return r, nil
		}
		return af - bf, nil
	case "*":
		if ints {
			if ai != 0 && bi != 0 {
				r := ai * bi
				if r/bi != ai || (ai == -1 && bi == math.MinInt64) || (bi == -1 && ai == math.MinInt64) {
					return nil, overflow()
				}
				return r, nil
			}
			return int64(0), nil
		}
		return af * bf, nil
	case "/":
		if bf == 0 {
			return nil, errorf("ZeroDivisionError", "division by zero")
		}
		if ints {
			return float64(ai) / float64(bi), nil
		}
		return af / bf, nil
	case "//":
		if ints {
			if bi == 0 {
				return nil, errorf("ZeroDivisionError", "integer division or modulo by zero")
			}
			q := ai / bi
			if (ai%bi != 0) && ((ai < 0) != (bi < 0)) {
				q--
			}
			return q, nil
		}
		if bf == 0 {
			return nil, errorf("ZeroDivisionError", "float floor division by zero")
		}
		return math.Floor(af / bf), nil
	case "%":
		if ints {
			if bi == 0 {
				return nil, errorf("ZeroDivisionError", "integer modulo by zero")
			}
			m := ai % bi
			if m != 0 && ((m < 0) != (bi < 0)) {
				m += bi
			}
			return m, nil
		}
		if bf == 0 {
			return nil, errorf("ZeroDivisionError", "float modulo")
		}
		m := math.Mod(af, bf)
		if m != 0 && ((m < 0) != (bf < 0)) {
			m += bf
		}
		return m, nil
	case "**":
		if ints && bi >= 0 {
			if (ai > 1 || ai < -1) && bi > 63 {
				return nil, overflow()
			}
			r := new(big.Int).Exp(big.NewInt(ai), big.NewInt(bi), nil)
			if !r.IsInt64() {
				return nil, overflow()
			}
			return r.Int64(), nil
		}
		if af == 0 && bf < 0 {
			return nil, errorf("ZeroDivisionError", "0.0 cannot be raised to a negative power")
		}
		if af < 0 && bf != math.Trunc(bf) {
			return nil, valueErrorf("math domain error (complex result)")
		}
		return math.Pow(af, bf), nil
	}
	return nil, typeErrorf("unsupported operator %s", op)
}

// htmlEscape is markupsafe.escape for text.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", ">", "&gt;", "<", "&lt;", "'", "&#39;", "\"", "&#34;").Replace(s)
}

// percentFormat is Python's format % args (printf-style string formatting).
func percentFormat(format string, args any) (string, error) {
	var positional []any
	var mapping *Dict
	switch x := args.(type) {
	case Tuple:
		positional = x
	case *Dict:
		mapping = x
		positional = []any{x}
	default:
		positional = []any{x}
	}
	next := 0
	nextArg := func() (any, error) {
		if next >= len(positional) {
			return nil, typeErrorf("not enough arguments for format string")
		}
		v := positional[next]
		next++
		return v, nil
	}
	usedMapping := false
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		i++
		if i >= len(format) {
			return "", valueErrorf("incomplete format")
		}
		var arg any
		haveArg := false
		if format[i] == '(' {
			end := strings.IndexByte(format[i:], ')')
			if end < 0 {
				return "", valueErrorf("incomplete format key")
			}
			if mapping == nil {
				return "", typeErrorf("format requires a mapping")
			}
			key := format[i+1 : i+end]
			v, ok := mapping.Get(key)
			if !ok {
				return "", errorf("KeyError", "%s", reprString(key))
			}
			arg, haveArg, usedMapping = v, true, true
			i += end + 1
		}
		flags := ""
		for i < len(format) && strings.IndexByte("#0- +", format[i]) >= 0 {
			flags += string(format[i])
			i++
		}
		width, prec := -1, -1
		readNum := func() (int, error) {
			if i < len(format) && format[i] == '*' {
				i++
				v, err := nextArg()
				if err != nil {
					return 0, err
				}
				n, ok := toInt(v)
				if !ok {
					return 0, typeErrorf("* wants int")
				}
				return int(n), nil
			}
			start := i
			for i < len(format) && isDigit(format[i]) {
				i++
			}
			if start == i {
				return -1, nil
			}
			return strconv.Atoi(format[start:i])
		}
		var err error
		if width, err = readNum(); err != nil {
			return "", err
		}
		if i < len(format) && format[i] == '.' {
			i++
			if prec, err = readNum(); err != nil {
				return "", err
			}
			if prec < 0 {
				prec = 0
			}
		}
		for i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++
		}
		if i >= len(format) {
			return "", valueErrorf("incomplete format")
		}
		conv := format[i]
		if conv == '%' {
			sb.WriteByte('%')
			continue
		}
		if !haveArg {
			if arg, err = nextArg(); err != nil {
				return "", err
			}
		}
		if u, ok := arg.(Undefined); ok && conv != 's' {
			return "", u.fail()
		}
		var body string
		numeric := false
		switch conv {
		case 's':
			body = pyStr(arg)
		case 'r', 'a':
			body = pyRepr(arg)
		case 'd', 'i', 'u':
			n, err := intFor(arg, "%"+string(conv))
			if err != nil {
				return "", err
			}
			body, numeric = strconv.FormatInt(n, 10), true
		case 'x', 'X', 'o':
			n, ok := toInt(arg)
			if !ok {
				return "", typeErrorf("%%%c format: an integer is required, not %s", conv, pyTypeName(arg))
			}
			base := map[byte]int{'x': 16, 'X': 16, 'o': 8}[conv]
			neg := n < 0
			if neg {
				n = -n
			}
			body = strconv.FormatUint(uint64(n), base)
			if conv == 'X' {
				body = strings.ToUpper(body)
			}
			if strings.Contains(flags, "#") {
				body = map[byte]string{'x': "0x", 'X': "0X", 'o': "0o"}[conv] + body
			}
			if neg {
				body = "-" + body
			}
			numeric = true
		case 'f', 'F', 'e', 'E', 'g', 'G':
			f, ok := toFloat(arg)
			if !ok {
				return "", typeErrorf("must be real number, not %s", pyTypeName(arg))
			}
			p := prec
			if p < 0 {
				p = 6
			}
			verb := conv
			if conv == 'F' {
				verb = 'f'
			}
			body = strconv.FormatFloat(f, verb, p, 64)
			if (conv == 'g' || conv == 'G') && strings.Contains(flags, "#") {
				body = fmt.Sprintf("%#."+strconv.Itoa(p)+string(verb), f)
			}
			numeric = true
		case 'c':
			switch x := arg.(type) {
			case int64:
				body = string(rune(x))
			case string:
				if utf8.RuneCountInString(x) != 1 {
					return "", typeErrorf("%%c requires int or char")
				}
				body = x
			default:
				return "", typeErrorf("%%c requires int or char")
			}
		default:
			return "", valueErrorf("unsupported format character '%c' (0x%x) at index %d", conv, conv, i)
		}
		if conv == 's' || conv == 'r' || conv == 'a' {
			if prec >= 0 && utf8.RuneCountInString(body) > prec {
				body = string([]rune(body)[:prec])
			}
		}
		if numeric && !strings.HasPrefix(body, "-") {
			if strings.Contains(flags, "+") {
				body = "+" + body
			} else if strings.Contains(flags, " ") {
				body = " " + body
			}
		}
		if n := utf8.RuneCountInString(body); width > n {
			switch {
			case strings.Contains(flags, "-"):
				body += strings.Repeat(" ", width-n)
			case numeric && strings.Contains(flags, "0"):
				sign := ""
				if body[0] == '-' || body[0] == '+' || body[0] == ' ' {
					sign, body = body[:1], body[1:]
				}
				body = sign + strings.Repeat("0", width-n) + body
			default:
				body = strings.Repeat(" ", width-n) + body
			}
		}
		sb.WriteString(body)
	}
	if mapping == nil && next < len(positional) {
		return "", typeErrorf("not all arguments converted during string formatting")
	}
	_ = usedMapping
	return sb.String(), nil
}

func intFor(v any, what string) (int64, error) {
	switch x := v.(type) {
	case bool, int64:
		i, _ := toInt(x)
		return i, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) >= 9.2e18 {
			return 0, overflow()
		}
		return int64(x), nil
	}
	return 0, typeErrorf("%s format: a real number is required, not %s", what, pyTypeName(v))
}

// strFormat is str.format with the sandbox's formatter: {}, {0}, {name}, attribute and index lookups,
// !r/!s conversions and the common format specs.
func (st *state) strFormat(format string, args []any, kwargs []KwArg) (string, error) {
	var sb strings.Builder
	auto := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '}' {
			if i+1 < len(format) && format[i+1] == '}' {
				sb.WriteByte('}')
				i++
				continue
			}
			return "", valueErrorf("Single '}' encountered in format string")
		}
		if c != '{' {
			sb.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '{' {
			sb.WriteByte('{')
			i++
			continue
		}
		depth, j := 1, i+1
		for ; j < len(format) && depth > 0; j++ {
			switch format[j] {
			case '{':
				depth++
			case '}':
				depth--
			}
		}
		if depth > 0 {
			return "", valueErrorf("expected '}' before end of string")
		}
		field := format[i+1 : j-1]
		i = j - 1
		spec := ""
		if k := strings.IndexByte(field, ':'); k >= 0 {
			field, spec = field[:k], field[k+1:]
		}
		conv := byte(0)
		if k := strings.IndexByte(field, '!'); k >= 0 {
			if k+2 != len(field) {
				return "", valueErrorf("expected ':' after conversion specifier")
			}
			conv = field[k+1]
			field = field[:k]
		}
		// first name, then .attr / [key] parts
		end := len(field)
		for k := 0; k < len(field); k++ {
			if field[k] == '.' || field[k] == '[' {
				end = k
				break
			}
		}
		first, rest := field[:end], field[end:]
		var v any
		switch {
		case first == "":
			if auto >= len(args) {
				return "", errorf("IndexError", "Replacement index %d out of range for positional args tuple", auto)
			}
			v = args[auto]
			auto++
		case isAllDigits(first):
			n, _ := strconv.Atoi(first)
			if n >= len(args) {
				return "", errorf("IndexError", "Replacement index %d out of range for positional args tuple", n)
			}
			v = args[n]
		default:
			found := false
			for _, k := range kwargs {
				if k.Name == first {
					v, found = k.Value, true
				}
			}
			if !found {
				return "", errorf("KeyError", "%s", reprString(first))
			}
		}
		for rest != "" {
			var err error
			if rest[0] == '.' {
				k := strings.IndexAny(rest[1:], ".[")
				name := rest[1:]
				if k >= 0 {
					name, rest = rest[1:k+1], rest[k+1:]
				} else {
					rest = ""
				}
				v, err = getattr(v, name)
			} else {
				k := strings.IndexByte(rest, ']')
				if k < 0 {
					return "", valueErrorf("Missing ']' in format string")
				}
				key := rest[1:k]
				rest = rest[k+1:]
				var kv any = key
				if isAllDigits(key) {
					n, _ := strconv.Atoi(key)
					kv = int64(n)
				}
				v, err = getitem(v, kv)
			}
			if err != nil {
				return "", err
			}
		}
		switch conv {
		case 'r', 'a':
			v = pyRepr(v)
		case 's':
			v = pyStr(v)
		case 0:
		default:
			return "", valueErrorf("Unknown conversion specifier %c", conv)
		}
		out, err := formatSpec(v, spec)
		if err != nil {
			return "", err
		}
		sb.WriteString(out)
	}
	return sb.String(), nil
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// formatSpec is format(v, spec) for the format-spec mini-language's common cases.
func formatSpec(v any, spec string) (string, error) {
	if u, ok := v.(Undefined); ok && spec != "" {
		return "", u.fail()
	}
	if spec == "" {
		return pyStr(v), nil
	}
	fill, align := " ", byte(0)
	if r, size := utf8.DecodeRuneInString(spec); size > 0 && size < len(spec) && strings.IndexByte("<>^=", spec[size]) >= 0 {
		fill, align, spec = string(r), spec[size], spec[size+1:]
	} else if len(spec) > 0 && strings.IndexByte("<>^=", spec[0]) >= 0 {
		align, spec = spec[0], spec[1:]
	}
	sign := byte(0)
	if len(spec) > 0 && strings.IndexByte("+- ", spec[0]) >= 0 {
		sign, spec = spec[0], spec[1:]
	}
	alt := false
	if strings.HasPrefix(spec, "#") {
		alt, spec = true, spec[1:]
	}
	if strings.HasPrefix(spec, "0") {
		if align == 0 {
			fill, align = "0", '='
		}
		spec = spec[1:]
	}
	k := 0
	for k < len(spec) && isDigit(spec[k]) {
		k++
	}
	width := -1
	if k > 0 {
		width, _ = strconv.Atoi(spec[:k])
	}
	spec = spec[k:]
	grouping := ""
	if strings.HasPrefix(spec, ",") || strings.HasPrefix(spec, "_") {
		grouping, spec = spec[:1], spec[1:]
	}
	prec := -1
	if strings.HasPrefix(spec, ".") {
		k = 1
		for k < len(spec) && isDigit(spec[k]) {
			k++
		}
		prec, _ = strconv.Atoi(spec[1:k])
		spec = spec[k:]
	}
	typ := byte(0)
	if len(spec) == 1 {
		typ = spec[0]
	} else if len(spec) > 1 {
		return "", valueErrorf("Invalid format specifier")
	}
	var body string
	numeric := false
	switch x := v.(type) {
	case string, Markup:
		if typ != 0 && typ != 's' {
			return "", valueErrorf("Unknown format code '%c' for object of type 'str'", typ)
		}
		body = pyStr(x)
		if prec >= 0 && utf8.RuneCountInString(body) > prec {
			body = string([]rune(body)[:prec])
		}
		if align == 0 {
			align = '<'
		}
	case bool, int64, float64:
		numeric = true
		if align == 0 {
			align = '>'
		}
		f, _ := toFloat(x)
		i, isInt := toInt(x)
		switch typ {
		case 0, 'd', 'n':
			if isInt && typ != 0 || isInt && prec < 0 {
				if _, b := x.(bool); b && typ == 0 {
					body = pyStr(x)
					numeric = false
				} else {
					body = strconv.FormatInt(i, 10)
				}
			} else if typ == 0 {
				if prec >= 0 {
					body = strconv.FormatFloat(f, 'g', prec, 64)
				} else {
					body = formatFloat(f)
				}
			} else {
				return "", valueErrorf("Unknown format code 'd' for object of type 'float'")
			}
		case 'x', 'X', 'o', 'b':
			if !isInt {
				return "", valueErrorf("Unknown format code '%c' for object of type 'float'", typ)
			}
			base := map[byte]int{'x': 16, 'X': 16, 'o': 8, 'b': 2}[typ]
			neg := i < 0
			if neg {
				i = -i
			}
			body = strconv.FormatUint(uint64(i), base)
			if typ == 'X' {
				body = strings.ToUpper(body)
			}
			if alt {
				body = map[byte]string{'x': "0x", 'X': "0X", 'o': "0o", 'b': "0b"}[typ] + body
			}
			if neg {
				body = "-" + body
			}
		case 'f', 'F', 'e', 'E', 'g', 'G', '%':
			p := prec
			if p < 0 {
				p = 6
			}
			switch typ {
			case '%':
				body = strconv.FormatFloat(f*100, 'f', p, 64) + "%"
			case 'F':
				body = strconv.FormatFloat(f, 'f', p, 64)
			default:
				body = strconv.FormatFloat(f, typ, p, 64)
			}
		default:
			return "", valueErrorf("Unknown format code '%c' for object of type '%s'", typ, pyTypeName(x))
		}
		if grouping != "" && numeric {
			body = groupDigits(body, grouping)
		}
		if numeric && !strings.HasPrefix(body, "-") {
			switch sign {
			case '+':
				body = "+" + body
			case ' ':
				body = " " + body
			}
		}
	default:
		if typ != 0 {
			return "", typeErrorf("unsupported format string passed to %s.__format__", pyTypeName(v))
		}
		body = pyStr(v)
		if align == 0 {
			align = '<'
		}
	}
	n := utf8.RuneCountInString(body)
	if width <= n {
		return body, nil
	}
	padN := width - n
	switch align {
	case '<':
		return body + strings.Repeat(fill, padN), nil
	case '^':
		return strings.Repeat(fill, padN/2) + body + strings.Repeat(fill, padN-padN/2), nil
	case '=':
		if numeric && len(body) > 0 && (body[0] == '-' || body[0] == '+' || body[0] == ' ') {
			return body[:1] + strings.Repeat(fill, padN) + body[1:], nil
		}
	}
	return strings.Repeat(fill, padN) + body, nil
}

func groupDigits(body, sep string) string {
	neg := strings.HasPrefix(body, "-")
	if neg {
		body = body[1:]
	}
	intPart, frac := body, ""
	if k := strings.IndexAny(body, ".e%"); k >= 0 {
		intPart, frac = body[:k], body[k:]
	}
	var sb strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			sb.WriteString(sep)
		}
		sb.WriteRune(c)
	}
	out := sb.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}
