package jinja

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The lexer reproduces Jinja2's (jinja2/lexer.py) with the settings transformers uses: trim_blocks and
// lstrip_blocks on, keep_trailing_newline off, default delimiters, no line statements.

type tokType int

const (
	tkData tokType = iota
	tkVarBegin
	tkVarEnd
	tkBlockBegin
	tkBlockEnd
	tkName
	tkString
	tkInt
	tkFloat
	tkOp
	tkEOF
)

type token struct {
	typ tokType
	val string // data text, name, operator, or decoded string literal
	num any    // int64 or float64 for number literals
	pos int    // byte offset in the normalized source
}

// describe is how Jinja2 names a token in error messages.
func (t token) describe() string {
	switch t.typ {
	case tkData:
		return "template data / text"
	case tkVarBegin:
		return "begin of print statement"
	case tkVarEnd:
		return "end of print statement"
	case tkBlockBegin:
		return "begin of statement block"
	case tkBlockEnd:
		return "end of statement block"
	case tkName, tkOp:
		return t.val
	case tkString:
		return "string"
	case tkInt:
		return "integer"
	case tkFloat:
		return "float"
	}
	return "end of template"
}

type lexer struct {
	name         string
	src          string
	lines        []int // byte offset of each line start
	toks         []token
	lineStarting bool
}

// normalizeSource is what Jinja2 does to a template before lexing: every \r\n and \r becomes \n, and one
// trailing newline is dropped (keep_trailing_newline is off).
func normalizeSource(s string) string {
	if strings.ContainsRune(s, '\r') {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return strings.TrimSuffix(s, "\n")
}

func newLexer(name, src string) *lexer {
	lx := &lexer{name: name, src: src, lineStarting: true, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			lx.lines = append(lx.lines, i+1)
		}
	}
	return lx
}

// lineCol converts a byte offset to a 1-based line and column (in characters).
func (lx *lexer) lineCol(pos int) (int, int) {
	i := sort.Search(len(lx.lines), func(i int) bool { return lx.lines[i] > pos }) - 1
	if i < 0 {
		i = 0
	}
	start := lx.lines[i]
	if pos > len(lx.src) {
		pos = len(lx.src)
	}
	return i + 1, utf8.RuneCountInString(lx.src[start:pos]) + 1
}

func (lx *lexer) errAt(pos int, msg string) error {
	line, col := lx.lineCol(pos)
	return &SyntaxError{Name: lx.name, Line: line, Col: col, Msg: msg}
}

func (lx *lexer) emit(typ tokType, val string, pos int) {
	lx.toks = append(lx.toks, token{typ: typ, val: val, pos: pos})
}

// pyRStrip is str.rstrip().
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// spaceLen is the length of the run of whitespace (regex \s*) at the start of s.
func spaceLen(s string) int {
	return len(s) - len(strings.TrimLeftFunc(s, pyIsSpace))
}

// lstrip applies the whitespace control of a tag to the text before it (OptionalLStrip in Jinja2).
func (lx *lexer) lstrip(text string, sign byte, isVariable bool) string {
	if sign == '-' {
		return pyRStrip(text)
	}
	if sign == '+' || isVariable {
		return text
	}
	lpos := strings.LastIndexByte(text, '\n') + 1
	if lpos > 0 || lx.lineStarting {
		rest := text[lpos:]
		if rest != "" && strings.TrimLeftFunc(rest, pyIsSpace) == "" {
			return text[:lpos]
		}
	}
	return text
}

func signAt(s string, i int) byte {
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		return s[i]
	}
	return 0
}

// matchRawBegin matches {%[-+]?\s*raw\s*(-%}\s*|%}) at src[i:]; it returns the match length.
func matchRawBegin(src string, i int) int {
	p := i + 2
	if signAt(src, p) != 0 {
		p++
	}
	p += spaceLen(src[p:])
	if !strings.HasPrefix(src[p:], "raw") {
		return 0
	}
	p += 3
	p += spaceLen(src[p:])
	switch {
	case strings.HasPrefix(src[p:], "-%}"):
		p += 3
		p += spaceLen(src[p:])
	case strings.HasPrefix(src[p:], "%}"):
		p += 2
	default:
		return 0
	}
	return p - i
}

// matchRawEnd matches {%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?) at src[i:]; it returns the match length and
// the sign.
func matchRawEnd(src string, i int) (int, byte) {
	if !strings.HasPrefix(src[i:], "{%") {
		return 0, 0
	}
	p := i + 2
	sign := signAt(src, p)
	if sign != 0 {
		p++
	}
	p += spaceLen(src[p:])
	if !strings.HasPrefix(src[p:], "endraw") {
		return 0, 0
	}
	p += 6
	p += spaceLen(src[p:])
	switch {
	case strings.HasPrefix(src[p:], "+%}"):
		p += 3
	case strings.HasPrefix(src[p:], "-%}"):
		p += 3
		p += spaceLen(src[p:])
	case strings.HasPrefix(src[p:], "%}"):
		p += 2
		if strings.HasPrefix(src[p:], "\n") {
			p++
		}
	default:
		return 0, 0
	}
	return p - i, sign
}

// tokenize splits the (normalized) source into tokens.
func (lx *lexer) tokenize() error {
	src := lx.src
	pos := 0
	for pos < len(src) {
		// The earliest tag start: {{, {% or {#.
		i := -1
		for j := pos; j+1 < len(src); j++ {
			if src[j] == '{' && (src[j+1] == '{' || src[j+1] == '%' || src[j+1] == '#') {
				i = j
				break
			}
		}
		if i < 0 {
			lx.emit(tkData, src[pos:], pos)
			lx.lineStarting = strings.HasSuffix(src, "\n")
			break
		}
		text := src[pos:i]
		kind := src[i+1]
		rawLen := 0
		if kind == '%' {
			rawLen = matchRawBegin(src, i)
		}
		sign := signAt(src, i+2)
		text = lx.lstrip(text, sign, kind == '{' && rawLen == 0)
		if text != "" {
			lx.emit(tkData, text, pos)
		}
		lx.lineStarting = false
		switch {
		case rawLen > 0:
			p := i + rawLen
			lx.lineStarting = src[p-1] == '\n'
			end, n, endSign := -1, 0, byte(0)
			for j := p; j < len(src); j++ {
				if n, endSign = matchRawEnd(src, j); n > 0 {
					end = j
					break
				}
			}
			if end < 0 {
				return lx.errAt(i, "Missing end of raw directive")
			}
			data := lx.lstrip(src[p:end], endSign, false)
			if data != "" {
				lx.emit(tkData, data, p)
			}
			pos = end + n
			lx.lineStarting = src[pos-1] == '\n'
		case kind == '#':
			p := i + 2
			if sign != 0 {
				p++
			}
			end := -1
			for j := p; j < len(src); j++ {
				rest := src[j:]
				switch {
				case strings.HasPrefix(rest, "+#}"):
					end = j + 3
				case strings.HasPrefix(rest, "-#}"):
					end = j + 3
					end += spaceLen(src[end:])
				case strings.HasPrefix(rest, "#}"):
					end = j + 2
					if strings.HasPrefix(src[end:], "\n") {
						end++
					}
				}
				if end >= 0 {
					break
				}
			}
			if end < 0 {
				return lx.errAt(i, "Missing end of comment tag")
			}
			pos = end
			lx.lineStarting = src[pos-1] == '\n'
		default:
			p := i + 2
			if sign != 0 {
				p++
			}
			isBlock := kind == '%'
			if isBlock {
				lx.emit(tkBlockBegin, src[i:p], i)
			} else {
				lx.emit(tkVarBegin, src[i:p], i)
			}
			np, err := lx.tag(p, isBlock)
			if err != nil {
				return err
			}
			pos = np
		}
	}
	return nil
}

var operators = []string{"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}

// tag tokenizes the inside of a {% %} or {{ }} tag starting at p; it returns the position after the tag.
func (lx *lexer) tag(p int, isBlock bool) (int, error) {
	src := lx.src
	var balance []byte
	for p < len(src) {
		rest := src[p:]
		if len(balance) == 0 {
			end := 0
			if isBlock {
				switch {
				case strings.HasPrefix(rest, "+%}"):
					end = 3
				case strings.HasPrefix(rest, "-%}"):
					end = 3 + spaceLen(rest[3:])
				case strings.HasPrefix(rest, "%}"):
					end = 2
					if strings.HasPrefix(rest[2:], "\n") {
						end++
					}
				}
			} else {
				switch {
				case strings.HasPrefix(rest, "-}}"):
					end = 3 + spaceLen(rest[3:])
				case strings.HasPrefix(rest, "}}"):
					end = 2
				}
			}
			if end > 0 {
				if isBlock {
					lx.emit(tkBlockEnd, rest[:end], p)
				} else {
					lx.emit(tkVarEnd, rest[:end], p)
				}
				lx.lineStarting = rest[end-1] == '\n'
				return p + end, nil
			}
		}
		if n := spaceLen(rest); n > 0 {
			lx.lineStarting = rest[n-1] == '\n'
			p += n
			continue
		}
		lx.lineStarting = false
		if n, v := matchFloat(src, p); n > 0 {
			lx.toks = append(lx.toks, token{typ: tkFloat, val: rest[:n], num: v, pos: p})
			p += n
			continue
		}
		if n, v, err := matchInt(rest); n > 0 {
			if err != nil {
				return 0, lx.errAt(p, err.Error())
			}
			lx.toks = append(lx.toks, token{typ: tkInt, val: rest[:n], num: v, pos: p})
			p += n
			continue
		}
		if n := matchName(rest); n > 0 {
			lx.emit(tkName, rest[:n], p)
			p += n
			continue
		}
		if rest[0] == '\'' || rest[0] == '"' {
			n := matchString(rest)
			if n > 0 {
				s, err := unescapeString(rest[1 : n-1])
				if err == errUnsupportedEscape {
					line, col := lx.lineCol(p)
					return 0, &UnsupportedError{Name: lx.name, Line: line, Col: col, Construct: err.Error()}
				}
				if err != nil {
					return 0, lx.errAt(p, err.Error())
				}
				lx.emit(tkString, s, p)
				p += n
				continue
			}
		}
		op := ""
		for _, o := range operators {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		if op == "" {
			r, _ := utf8.DecodeRuneInString(rest)
			return 0, lx.errAt(p, "unexpected char "+reprString(string(r))+" at "+strconv.Itoa(utf8.RuneCountInString(src[:p])))
		}
		switch op {
		case "{":
			balance = append(balance, '}')
		case "(":
			balance = append(balance, ')')
		case "[":
			balance = append(balance, ']')
		case "}", ")", "]":
			if len(balance) == 0 {
				return 0, lx.errAt(p, "unexpected '"+op+"'")
			}
			want := balance[len(balance)-1]
			balance = balance[:len(balance)-1]
			if want != op[0] {
				return 0, lx.errAt(p, "unexpected '"+op+"', expected '"+string(want)+"'")
			}
		}
		lx.emit(tkOp, op, p)
		p += len(op)
	}
	return p, nil // the parser reports the missing end of the tag
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitRun matches (\d+_)*\d+ at s[i:]; it returns the end.
func digitRun(s string, i int) int {
	j := i
	for {
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k == j {
			return i
		}
		if k < len(s) && s[k] == '_' && k+1 < len(s) && isDigit(s[k+1]) {
			j = k + 1
			continue
		}
		return k
	}
}

// matchFloat matches Jinja2's float literal at src[p:] (not right after a dot).
func matchFloat(src string, p int) (int, float64) {
	if p > 0 && src[p-1] == '.' {
		return 0, 0
	}
	e := digitRun(src, p)
	if e == p {
		return 0, 0
	}
	end := 0
	// fraction then optional exponent, or exponent alone
	q := e
	hasFrac := false
	if q < len(src) && src[q] == '.' {
		if f := digitRun(src, q+1); f > q+1 {
			q, hasFrac = f, true
		}
	}
	if q < len(src) && (src[q] == 'e' || src[q] == 'E') {
		r := q + 1
		if r < len(src) && (src[r] == '+' || src[r] == '-') {
			r++
		}
		if x := digitRun(src, r); x > r {
			end = x
		}
	}
	if end == 0 && hasFrac {
		end = q
	}
	if end == 0 {
		return 0, 0
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(src[p:end], "_", ""), 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, 0
	}
	return end - p, v
}

// matchInt matches Jinja2's integer literal (binary, octal, hex, decimal, with _ separators).
func matchInt(s string) (int, int64, error) {
	if s == "" || !isDigit(s[0]) {
		return 0, 0, nil
	}
	base, n := 10, 0
	if s[0] == '0' && len(s) > 1 {
		switch s[1] {
		case 'b', 'B':
			base = 2
		case 'o', 'O':
			base = 8
		case 'x', 'X':
			base = 16
		}
	}
	if base != 10 {
		i := 2
		valid := func(c byte) bool {
			switch base {
			case 2:
				return c == '0' || c == '1'
			case 8:
				return c >= '0' && c <= '7'
			}
			return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		}
		for i < len(s) {
			if valid(s[i]) {
				i++
			} else if s[i] == '_' && i+1 < len(s) && valid(s[i+1]) {
				i += 2
			} else {
				break
			}
		}
		if i > 2 {
			n = i
		} else {
			base, n = 10, 0
		}
	}
	if base == 10 {
		if s[0] == '0' {
			n = 1
			for n < len(s) {
				if s[n] == '0' {
					n++
				} else if s[n] == '_' && n+1 < len(s) && s[n+1] == '0' {
					n += 2
				} else {
					break
				}
			}
		} else {
			n = digitRun(s, 0)
		}
	}
	text := strings.ReplaceAll(s[:n], "_", "")
	if base != 10 {
		text = text[2:]
	}
	v, err := strconv.ParseInt(text, base, 64)
	if err != nil {
		return n, 0, errString("integer literal " + s[:n] + " is too large")
	}
	return n, v, nil
}

// errUnsupportedEscape is a \N{NAME} escape: Python resolves the Unicode character name, this engine does not.
var errUnsupportedEscape = errString(`\N{...} escapes in string literals`)

type errString string

func (e errString) Error() string { return string(e) }

func isNameStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r)
}

func isNameCont(r rune) bool {
	return isNameStart(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Pc)
}

func matchName(s string) int {
	r, size := utf8.DecodeRuneInString(s)
	if !isNameStart(r) {
		return 0
	}
	n := size
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !isNameCont(r) {
			break
		}
		n += size
	}
	return n
}

// matchString matches a quoted string literal ('...' or "..." with backslash escapes) at s[0:].
func matchString(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1
		}
	}
	return 0
}

// unescapeString decodes a string literal's body as Jinja2 does: non-ASCII characters become Python
// backslash escapes (backslashreplace), then the whole is decoded with the unicode-escape codec.
func unescapeString(body string) (string, error) {
	if !strings.ContainsRune(body, '\\') {
		return body, nil
	}
	var ascii strings.Builder
	for _, r := range body {
		switch {
		case r < 0x80:
			ascii.WriteRune(r)
		case r < 0x100:
			ascii.WriteString(`\x` + hex2(int(r), 2))
		case r < 0x10000:
			ascii.WriteString(`\u` + hex2(int(r), 4))
		default:
			ascii.WriteString(`\U` + hex2(int(r), 8))
		}
	}
	s := ascii.String()
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errString("\\ at end of string")
		}
		c = s[i]
		switch c {
		case '\n':
		case '\\', '\'', '"':
			out.WriteByte(c)
		case 'a':
			out.WriteByte(7)
		case 'b':
			out.WriteByte(8)
		case 'f':
			out.WriteByte(12)
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'v':
			out.WriteByte(11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, j := 0, i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				v = v*8 + int(s[j]-'0')
				j++
			}
			out.WriteRune(rune(v))
			i = j - 1
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			truncated := errString("truncated \\" + string(c) + strings.Repeat("X", n) + " escape")
			if i+1+n > len(s) {
				return "", truncated
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil {
				return "", truncated
			}
			if v > unicode.MaxRune {
				return "", errString("illegal Unicode character")
			}
			out.WriteRune(rune(v))
			i += n
		case 'N':
			return "", errUnsupportedEscape
		default:
			out.WriteByte('\\')
			out.WriteByte(c)
		}
	}
	return out.String(), nil
}

func hex2(v, width int) string {
	s := strconv.FormatInt(int64(v), 16)
	for len(s) < width {
		s = "0" + s
	}
	return s
}
