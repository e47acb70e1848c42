// Package jinja renders Hugging Face chat templates as transformers renders them: a Jinja template engine
// for the dialect of Jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
// loopcontrols extension, transformers' {% generation %} tag, its tojson filter (json.dumps with
// ensure_ascii=False) and its globals raise_exception and strftime_now.
//
// Values follow Python's semantics: truthiness, str() and repr(), integer and float arithmetic, the string,
// list and dict methods templates call, insertion-ordered dicts, and Jinja2's default Undefined (it prints
// as "", and any other use raises). A template that uses a Jinja2 construct this engine does not implement
// fails to parse with an *UnsupportedError that names the construct; a template that calls
// raise_exception fails to render with an *Error whose Raised method reports true.
package jinja

import (
	"strings"
	"time"
)

// Template is a parsed template.
type Template struct {
	name string
	lx   *lexer
	body []stmt
	uses map[string]bool
}

// Parse parses a template. name names it in errors (a file name, or "chat_template").
func Parse(name, source string) (*Template, error) {
	lx := newLexer(name, normalizeSource(source))
	if err := lx.tokenize(); err != nil {
		return nil, err
	}
	lx.toks = append(lx.toks, token{typ: tkEOF, pos: len(lx.src)})
	p := &parser{lx: lx, toks: lx.toks, uses: map[string]bool{}}
	body, err := p.parseTemplate()
	if err != nil {
		return nil, err
	}
	return &Template{name: name, lx: lx, body: body, uses: p.uses}, nil
}

// Name is the name the template was parsed with.
func (t *Template) Name() string { return t.name }

// Uses reports whether the template reads the variable (or global) name anywhere.
func (t *Template) Uses(name string) bool { return t.uses[name] }

// Options configure a rendering.
type Options struct {
	// Now is strftime_now's clock (default time.Now).
	Now func() time.Time
	// MaxOutput bounds the rendered text and any string the template builds, in bytes (default 64 MiB).
	MaxOutput int
	// MaxSteps bounds the loop iterations and macro calls of one rendering (default 10 million): a
	// template is outside input, and nested loops over large ranges would otherwise run for hours.
	MaxSteps int
}

// Render renders the template with vars (template values: see Value and FromJSON).
func (t *Template) Render(vars map[string]any, opts Options) (string, error) {
	st := &state{t: t, now: opts.Now, budget: opts.MaxOutput, steps: opts.MaxSteps}
	if st.now == nil {
		st.now = time.Now
	}
	if st.budget <= 0 {
		st.budget = 64 << 20
	}
	if st.steps <= 0 {
		st.steps = 10_000_000
	}
	root := newScope(newScope(globals()))
	for k, v := range vars {
		c, err := Value(v)
		if err != nil {
			return "", err
		}
		root.parent.vars[k] = c
	}
	var out strings.Builder
	if err := st.exec(t.body, root, &out); err != nil {
		return "", err
	}
	return out.String(), nil
}

// globals are the environment's globals: Jinja2's defaults (but lipsum) and transformers' additions.
func globals() *scope {
	g := newScope(nil)
	g.vars["range"] = &Func{"range", fnRange}
	g.vars["dict"] = &Func{"dict", fnDict}
	g.vars["namespace"] = &Func{"namespace", fnNamespace}
	g.vars["cycler"] = &Func{"cycler", func(st *state, args []any, kwargs []KwArg) (any, error) {
		if len(args) == 0 || len(kwargs) > 0 {
			return nil, typeErrorf("at least one item has to be provided")
		}
		return &Cycler{items: args}, nil
	}}
	g.vars["joiner"] = &Func{"joiner", func(st *state, args []any, kwargs []KwArg) (any, error) {
		a, have, err := bindArgs("joiner", []string{"sep"}, 0, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		sep := ", "
		if have[0] {
			sep = pyStr(a[0])
		}
		return &Joiner{sep: sep}, nil
	}}
	g.vars["raise_exception"] = &Func{"raise_exception", func(st *state, args []any, kwargs []KwArg) (any, error) {
		a, _, err := bindArgs("raise_exception", []string{"message"}, 1, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		return nil, &Error{Kind: KindRaise, Msg: pyStr(a[0])}
	}}
	g.vars["strftime_now"] = &Func{"strftime_now", func(st *state, args []any, kwargs []KwArg) (any, error) {
		a, _, err := bindArgs("strftime_now", []string{"format"}, 1, true, args, kwargs)
		if err != nil {
			return nil, err
		}
		f, ok := strOf(a[0])
		if !ok {
			return nil, typeErrorf("strftime() argument 1 must be str, not %s", pyTypeName(a[0]))
		}
		return strftime(st.now(), f), nil
	}}
	return g
}

const maxRange = 100000

func fnRange(st *state, args []any, kwargs []KwArg) (any, error) {
	if len(kwargs) > 0 {
		return nil, typeErrorf("range() takes no keyword arguments")
	}
	if len(args) == 0 || len(args) > 3 {
		return nil, typeErrorf("range expected at most 3 arguments, got %d", len(args))
	}
	n := make([]int64, len(args))
	for i, a := range args {
		v, ok := toInt(a)
		if !ok {
			if u, isU := a.(Undefined); isU {
				return nil, u.fail()
			}
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", pyTypeName(a))
		}
		n[i] = v
	}
	start, stop, step := int64(0), n[0], int64(1)
	if len(n) >= 2 {
		start, stop = n[0], n[1]
	}
	if len(n) == 3 {
		step = n[2]
	}
	if step == 0 {
		return nil, valueErrorf("range() arg 3 must not be zero")
	}
	count := int64(0)
	if step > 0 && stop > start {
		count = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		count = (start - stop - step - 1) / -step
	}
	if count > maxRange {
		return nil, errorf("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", maxRange)
	}
	st.steps -= int(count)
	if err := st.step(); err != nil {
		return nil, err
	}
	out := make([]any, count)
	for i := range out {
		out[i] = start + int64(i)*step
	}
	return out, nil
}

// dictFrom fills d from a dict(...) / namespace(...) positional argument: a mapping or pairs.
func dictFrom(d *Dict, arg any) error {
	if src, ok := arg.(*Dict); ok {
		for i, k := range src.keys {
			d.Set(k, src.vals[i])
		}
		return nil
	}
	items, err := iterate(arg)
	if err != nil {
		return err
	}
	for i, it := range items {
		pair, err := iterate(it)
		if err != nil {
			return typeErrorf("cannot convert dictionary update sequence element #%d to a sequence", i)
		}
		if len(pair) != 2 {
			return valueErrorf("dictionary update sequence element #%d has length %d; 2 is required", i, len(pair))
		}
		if err := d.Set(pair[0], pair[1]); err != nil {
			return err
		}
	}
	return nil
}

func fnDict(st *state, args []any, kwargs []KwArg) (any, error) {
	if len(args) > 1 {
		return nil, typeErrorf("dict expected at most 1 argument, got %d", len(args))
	}
	d := NewDict()
	if len(args) == 1 {
		if err := dictFrom(d, args[0]); err != nil {
			return nil, err
		}
	}
	for _, k := range kwargs {
		d.Set(k.Name, k.Value)
	}
	return d, nil
}

func fnNamespace(st *state, args []any, kwargs []KwArg) (any, error) {
	d := NewDict()
	if len(args) > 1 {
		return nil, typeErrorf("dict expected at most 1 argument, got %d", len(args))
	}
	if len(args) == 1 {
		if err := dictFrom(d, args[0]); err != nil {
			return nil, err
		}
	}
	for _, k := range kwargs {
		d.Set(k.Name, k.Value)
	}
	return &Namespace{attrs: d}, nil
}

// strftime is Python's datetime.strftime (C locale) for the common directives.
func strftime(t time.Time, format string) string {
	var sb strings.Builder
	pad := func(v, width int, noPad bool) string {
		s := itoa(v)
		if noPad {
			return s
		}
		for len(s) < width {
			s = "0" + s
		}
		return s
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			sb.WriteByte(c)
			continue
		}
		i++
		noPad := false
		if format[i] == '-' && i+1 < len(format) {
			noPad = true
			i++
		}
		hour12 := t.Hour() % 12
		if hour12 == 0 {
			hour12 = 12
		}
		switch format[i] {
		case 'Y':
			sb.WriteString(itoa(t.Year()))
		case 'y':
			sb.WriteString(pad(t.Year()%100, 2, noPad))
		case 'm':
			sb.WriteString(pad(int(t.Month()), 2, noPad))
		case 'd':
			sb.WriteString(pad(t.Day(), 2, noPad))
		case 'e':
			s := itoa(t.Day())
			if len(s) < 2 && !noPad {
				s = " " + s
			}
			sb.WriteString(s)
		case 'H':
			sb.WriteString(pad(t.Hour(), 2, noPad))
		case 'I':
			sb.WriteString(pad(hour12, 2, noPad))
		case 'M':
			sb.WriteString(pad(t.Minute(), 2, noPad))
		case 'S':
			sb.WriteString(pad(t.Second(), 2, noPad))
		case 'f':
			sb.WriteString(pad(t.Nanosecond()/1000, 6, false))
		case 'p':
			if t.Hour() < 12 {
				sb.WriteString("AM")
			} else {
				sb.WriteString("PM")
			}
		case 'b', 'h':
			sb.WriteString(t.Month().String()[:3])
		case 'B':
			sb.WriteString(t.Month().String())
		case 'a':
			sb.WriteString(t.Weekday().String()[:3])
		case 'A':
			sb.WriteString(t.Weekday().String())
		case 'j':
			sb.WriteString(pad(t.YearDay(), 3, noPad))
		case 'w':
			sb.WriteString(itoa(int(t.Weekday())))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			sb.WriteString(itoa(wd))
		case 'F':
			sb.WriteString(t.Format("2006-01-02"))
		case 'D':
			sb.WriteString(t.Format("01/02/06"))
		case 'T':
			sb.WriteString(t.Format("15:04:05"))
		case 'R':
			sb.WriteString(t.Format("15:04"))
		case 'c':
			sb.WriteString(t.Format("Mon Jan ") + func() string {
				s := itoa(t.Day())
				if len(s) < 2 {
					s = " " + s
				}
				return s
			}() + t.Format(" 15:04:05 2006"))
		case 'x':
			sb.WriteString(t.Format("01/02/06"))
		case 'X':
			sb.WriteString(t.Format("15:04:05"))
		case 'Z', 'z':
			// transformers formats a naive datetime.now(): no zone
		case '%':
			sb.WriteByte('%')
		case 'n':
			sb.WriteByte('\n')
		case 't':
			sb.WriteByte('\t')
		default:
			sb.WriteByte('%')
			if noPad {
				sb.WriteByte('-')
			}
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
