package jinja

import (
	"errors"
	"strings"
	"time"
)

// scope is one frame of variables; lookups fall through to the parent. Jinja2 opens a new frame for each
// iteration of a for loop, each macro call, and the bodies of with, filter, call and block-set tags; if
// bodies share their parent's.
type scope struct {
	vars   map[string]any
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]any{}, parent: parent} }

func (s *scope) lookup(name string) (any, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (s *scope) set(name string, v any) { s.vars[name] = v }

// state is one rendering.
type state struct {
	t       *Template
	now     func() time.Time
	budget  int // output bytes left before the render fails
	depth   int // macro call depth
	written int
	steps   int // loop iterations and calls left
}

// step counts one loop iteration or macro call against the budget.
func (st *state) step() error {
	st.steps--
	if st.steps < 0 {
		return errorf("TemplateRuntimeError", "the template ran too long (over its budget of loop iterations and macro calls)")
	}
	return nil
}

var (
	errBreak    = errors.New("break")
	errContinue = errors.New("continue")
)

const maxCallDepth = 200

// KwArg is a keyword argument of a call.
type KwArg struct {
	Name  string
	Value any
}

// Func is a callable global (range, namespace, raise_exception, ...).
type Func struct {
	name string
	fn   func(st *state, args []any, kwargs []KwArg) (any, error)
}

// boundMethod is a method of a value (str.strip, dict.items, ...), called through callMethod.
type boundMethod struct {
	recv any
	name string
}

// Macro is a {% macro %} (or the caller of a {% call %} block).
type Macro struct {
	name      string
	args      []string
	defaults  []expr
	body      []stmt
	closure   *scope
	catchKw   bool // the body reads kwargs
	catchVar  bool // the body reads varargs
	hasCaller bool // the body reads caller
}

// LoopContext is the loop variable of a for loop.
type LoopContext struct {
	items   []any
	index   int
	changed any
	hasLast bool
}

func (st *state) lineOf(pos int) int {
	line, _ := st.t.lx.lineCol(pos)
	return line
}

// at attaches the template line of pos to a runtime error that has none.
func (st *state) at(err error, pos int) error {
	var e *Error
	if errors.As(err, &e) && e.Line == 0 {
		e.Line = st.lineOf(pos)
	}
	return err
}

func (st *state) write(out *strings.Builder, s string) error {
	st.written += len(s)
	if st.written > st.budget {
		return errorf("MemoryError", "the template's output passed %d bytes", st.budget)
	}
	out.WriteString(s)
	return nil
}

// exec runs statements, writing to out.
func (st *state) exec(body []stmt, sc *scope, out *strings.Builder) error {
	for _, s := range body {
		if err := st.execOne(s, sc, out); err != nil {
			if err == errBreak || err == errContinue {
				return err
			}
			return st.at(err, s.position())
		}
	}
	return nil
}

func (st *state) execOne(s stmt, sc *scope, out *strings.Builder) error {
	switch x := s.(type) {
	case *outputStmt:
		for _, it := range x.items {
			if text, ok := it.(string); ok {
				if err := st.write(out, text); err != nil {
					return err
				}
				continue
			}
			v, err := st.eval(it.(expr), sc)
			if err != nil {
				return err
			}
			if err := st.write(out, pyStr(v)); err != nil {
				return err
			}
		}
	case *ifStmt:
		v, err := st.eval(x.test, sc)
		if err != nil {
			return err
		}
		if truthy(v) {
			return st.exec(x.body, sc, out)
		}
		return st.exec(x.els, sc, out)
	case *forStmt:
		return st.execFor(x, sc, out)
	case *assignStmt:
		v, err := st.eval(x.value, sc)
		if err != nil {
			return err
		}
		return st.assign(x.target, v, sc)
	case *assignBlockStmt:
		var buf strings.Builder
		if err := st.exec(x.body, newScope(sc), &buf); err != nil {
			return err
		}
		var v any = buf.String()
		if x.filter != nil {
			var err error
			if v, err = st.applyFilter(x.filter, v, sc); err != nil {
				return err
			}
		}
		return st.assign(x.target, v, sc)
	case *macroStmt:
		m := newMacro(x.name, x.args, x.defaults, x.body, x.reads, sc)
		sc.set(x.name, m)
	case *callBlockStmt:
		caller := newMacro("caller", x.args, x.defaults, x.body, x.reads, sc)
		call := *x.call
		call.kwargs = append(append([]keyword(nil), call.kwargs...), keyword{"caller", &constExpr{base{x.pos}, caller}})
		v, err := st.eval(&call, sc)
		if err != nil {
			return err
		}
		return st.write(out, pyStr(v))
	case *filterBlockStmt:
		var buf strings.Builder
		if err := st.exec(x.body, newScope(sc), &buf); err != nil {
			return err
		}
		v, err := st.applyFilter(x.filter, buf.String(), sc)
		if err != nil {
			return err
		}
		return st.write(out, pyStr(v))
	case *withStmt:
		inner := newScope(sc)
		for i, t := range x.targets {
			v, err := st.eval(x.values[i], sc)
			if err != nil {
				return err
			}
			if err := st.assign(t, v, inner); err != nil {
				return err
			}
		}
		return st.exec(x.body, inner, out)
	case *scopeStmt:
		var buf strings.Builder
		if err := st.exec(x.body, newScope(sc), &buf); err != nil {
			return err
		}
		out.WriteString(buf.String())
	case *breakStmt:
		return errBreak
	case *continueStmt:
		return errContinue
	}
	return nil
}

func newMacro(name string, args []string, defaults []expr, body []stmt, reads map[string]bool, sc *scope) *Macro {
	return &Macro{name: name, args: args, defaults: defaults, body: body, closure: sc,
		catchKw: reads["kwargs"], catchVar: reads["varargs"], hasCaller: reads["caller"]}
}

func (st *state) execFor(x *forStmt, sc *scope, out *strings.Builder) error {
	iv, err := st.eval(x.iter, sc)
	if err != nil {
		return err
	}
	items, err := iterate(iv)
	if err != nil {
		return err
	}
	if x.test != nil {
		var kept []any
		for _, it := range items {
			if err := st.step(); err != nil {
				return err
			}
			ts := newScope(sc)
			if err := st.assign(x.target, it, ts); err != nil {
				return err
			}
			ok, err := st.eval(x.test, ts)
			if err != nil {
				return err
			}
			if truthy(ok) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return st.exec(x.els, newScope(sc), out)
	}
	loop := &LoopContext{items: items}
	for i, it := range items {
		if err := st.step(); err != nil {
			return err
		}
		loop.index = i
		is := newScope(sc)
		if err := st.assign(x.target, it, is); err != nil {
			return err
		}
		is.set("loop", loop)
		err := st.exec(x.body, is, out)
		if err == errBreak {
			break
		}
		if err != nil && err != errContinue {
			return err
		}
	}
	return nil
}

// assign binds target (a name, ns.attr or a tuple of targets) to v in sc.
func (st *state) assign(target expr, v any, sc *scope) error {
	switch t := target.(type) {
	case *nameExpr:
		sc.set(t.name, v)
		return nil
	case *nsRefExpr:
		ref, _ := sc.lookup(t.name)
		ns, ok := ref.(*Namespace)
		if !ok {
			return errorf("TemplateRuntimeError", "cannot assign attribute on non-namespace object")
		}
		return ns.attrs.Set(t.attr, v)
	case *tupleExpr:
		items, err := iterate(v)
		if err != nil {
			return typeErrorf("cannot unpack non-iterable %s object", pyTypeName(v))
		}
		if len(items) < len(t.items) {
			return valueErrorf("not enough values to unpack (expected %d, got %d)", len(t.items), len(items))
		}
		if len(items) > len(t.items) {
			return valueErrorf("too many values to unpack (expected %d)", len(t.items))
		}
		for i, sub := range t.items {
			if err := st.assign(sub, items[i], sc); err != nil {
				return err
			}
		}
		return nil
	}
	return errorf("TemplateRuntimeError", "cannot assign to this target")
}

// iterate lists what a for loop over v visits.
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case Tuple:
		return x, nil
	case string:
		return runeStrings(x), nil
	case Markup:
		out := runeStrings(string(x))
		for i, s := range out {
			out[i] = Markup(s.(string))
		}
		return out, nil
	case *Dict:
		return x.Keys(), nil
	case *DictView:
		return x.list(), nil
	case *Generator:
		return x.take(), nil
	case Undefined:
		return nil, nil
	case *Cycler:
		return nil, typeErrorf("'Cycler' object is not iterable")
	}
	return nil, typeErrorf("'%s' object is not iterable", pyTypeName(v))
}

func runeStrings(s string) []any {
	out := make([]any, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// eval evaluates an expression.
func (st *state) eval(e expr, sc *scope) (any, error) {
	v, err := st.eval1(e, sc)
	if err != nil {
		return nil, st.at(err, e.position())
	}
	return v, nil
}

func (st *state) eval1(e expr, sc *scope) (any, error) {
	switch x := e.(type) {
	case *constExpr:
		return x.value, nil
	case *nameExpr:
		if v, ok := sc.lookup(x.name); ok {
			return v, nil
		}
		return undefinedName(x.name), nil
	case *tupleExpr:
		items, err := st.evalList(x.items, sc)
		return Tuple(items), err
	case *listExpr:
		items, err := st.evalList(x.items, sc)
		if items == nil {
			items = []any{}
		}
		return items, err
	case *dictExpr:
		d := NewDict()
		for i, k := range x.keys {
			kv, err := st.eval(k, sc)
			if err != nil {
				return nil, err
			}
			vv, err := st.eval(x.values[i], sc)
			if err != nil {
				return nil, err
			}
			if err := d.Set(kv, vv); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *getattrExpr:
		obj, err := st.eval(x.obj, sc)
		if err != nil {
			return nil, err
		}
		return getattr(obj, x.attr)
	case *getitemExpr:
		obj, err := st.eval(x.obj, sc)
		if err != nil {
			return nil, err
		}
		if s, ok := x.arg.(*sliceExpr); ok {
			return st.evalSlice(obj, s, sc)
		}
		key, err := st.eval(x.arg, sc)
		if err != nil {
			return nil, err
		}
		return getitem(obj, key)
	case *callExpr:
		return st.evalCall(x, sc)
	case *filterExpr:
		v, err := st.eval(x.arg, sc)
		if err != nil {
			return nil, err
		}
		return st.applyFilter(x, v, sc)
	case *testExpr:
		return st.applyTest(x, sc)
	case *condExpr:
		t, err := st.eval(x.test, sc)
		if err != nil {
			return nil, err
		}
		if truthy(t) {
			return st.eval(x.then, sc)
		}
		if x.els == nil {
			return undefinedHint("the inline if-expression on line " + itoa(st.lineOf(x.pos)) + " evaluated to false and no else section was defined."), nil
		}
		return st.eval(x.els, sc)
	case *andExpr:
		l, err := st.eval(x.left, sc)
		if err != nil || !truthy(l) {
			return l, err
		}
		return st.eval(x.right, sc)
	case *orExpr:
		l, err := st.eval(x.left, sc)
		if err != nil || truthy(l) {
			return l, err
		}
		return st.eval(x.right, sc)
	case *notExpr:
		v, err := st.eval(x.arg, sc)
		return !truthy(v), err
	case *negExpr, *posExpr:
		var arg expr
		op := "-"
		if n, ok := x.(*negExpr); ok {
			arg = n.arg
		} else {
			arg, op = x.(*posExpr).arg, "+"
		}
		v, err := st.eval(arg, sc)
		if err != nil {
			return nil, err
		}
		return unaryOp(op, v)
	case *binExpr:
		l, err := st.eval(x.left, sc)
		if err != nil {
			return nil, err
		}
		r, err := st.eval(x.right, sc)
		if err != nil {
			return nil, err
		}
		return st.binaryOp(x.op, l, r)
	case *concatExpr:
		var sb strings.Builder
		for _, it := range x.items {
			v, err := st.eval(it, sc)
			if err != nil {
				return nil, err
			}
			sb.WriteString(pyStr(v))
			if sb.Len() > st.budget {
				return nil, errorf("MemoryError", "a string passed %d bytes", st.budget)
			}
		}
		return sb.String(), nil
	case *compareExpr:
		left, err := st.eval(x.arg, sc)
		if err != nil {
			return nil, err
		}
		for _, op := range x.ops {
			right, err := st.eval(op.arg, sc)
			if err != nil {
				return nil, err
			}
			ok, err := compareOp(op.op, left, right)
			if err != nil || !ok {
				return false, err
			}
			left = right
		}
		return true, nil
	}
	return nil, errorf("TemplateRuntimeError", "cannot evaluate %T", e)
}

func (st *state) evalList(items []expr, sc *scope) ([]any, error) {
	out := make([]any, 0, len(items))
	for _, it := range items {
		v, err := st.eval(it, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// compareOp is one link of a comparison chain.
func compareOp(op string, a, b any) (bool, error) {
	switch op {
	case "eq":
		return pyEqual(a, b), nil
	case "ne":
		return !pyEqual(a, b), nil
	case "in":
		return contains(b, a)
	case "notin":
		ok, err := contains(b, a)
		return !ok, err
	}
	sym := map[string]string{"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">="}[op]
	c, err := pyCompare(a, b, sym)
	if err != nil {
		return false, err
	}
	switch op {
	case "lt":
		return c < 0, nil
	case "lteq":
		return c <= 0, nil
	case "gt":
		return c > 0, nil
	}
	return c >= 0, nil
}

// contains is Python's item in container.
func contains(container, item any) (bool, error) {
	switch c := container.(type) {
	case string, Markup:
		cs, _ := strOf(c)
		s, ok := strOf(item)
		if !ok {
			return false, typeErrorf("'in <string>' requires string as left operand, not %s", pyTypeName(item))
		}
		return strings.Contains(cs, s), nil
	case *Dict:
		if _, err := hashKey(item); err != nil {
			return false, err
		}
		_, ok := c.Get(item)
		return ok, nil
	case *DictView:
		if c.kind == "keys" {
			_, ok := c.d.Get(item)
			return ok, nil
		}
	case Undefined:
		return false, nil
	case nil, bool, int64, float64, *Namespace, *Macro, *Func, *boundMethod:
		return false, typeErrorf("argument of type '%s' is not iterable", pyTypeName(container))
	}
	items, err := iterate(container)
	if err != nil {
		return false, typeErrorf("argument of type '%s' is not iterable", pyTypeName(container))
	}
	for _, it := range items {
		if pyEqual(it, item) {
			return true, nil
		}
	}
	return false, nil
}

func (st *state) evalSlice(obj any, s *sliceExpr, sc *scope) (any, error) {
	var bounds [3]any
	for i, e := range []expr{s.start, s.stop, s.step} {
		if e == nil {
			continue
		}
		v, err := st.eval(e, sc)
		if err != nil {
			return nil, err
		}
		bounds[i] = v
	}
	if u, ok := obj.(Undefined); ok {
		return nil, u.fail()
	}
	return sliceValue(obj, bounds[0], bounds[1], bounds[2])
}

// sliceValue is obj[start:stop:step] for a str, list or tuple.
func sliceValue(obj, start, stop, step any) (any, error) {
	var n int
	switch x := obj.(type) {
	case string:
		n = len([]rune(x))
	case Markup:
		n = len([]rune(x))
	case []any:
		n = len(x)
	case Tuple:
		n = len(x)
	default:
		return undefinedOn(obj, Tuple{start, stop, step}), nil
	}
	idx := func(v any, what string) (int64, bool, error) {
		if v == nil {
			return 0, false, nil
		}
		i, ok := toInt(v)
		if !ok {
			if u, isU := v.(Undefined); isU {
				return 0, false, u.fail()
			}
			return 0, false, typeErrorf("slice indices must be integers or None or have an __index__ method")
		}
		return i, true, nil
	}
	st, hasStep, err := idx(step, "step")
	if err != nil {
		return nil, err
	}
	if !hasStep {
		st = 1
	}
	if st == 0 {
		return nil, valueErrorf("slice step cannot be zero")
	}
	b, hasB, err := idx(start, "start")
	if err != nil {
		return nil, err
	}
	e, hasE, err := idx(stop, "stop")
	if err != nil {
		return nil, err
	}
	ln := int64(n)
	clamp := func(v int64, has bool, def int64) int64 {
		if !has {
			return def
		}
		if v < 0 {
			v += ln
			if v < 0 {
				if st < 0 {
					return -1
				}
				return 0
			}
		}
		if v >= ln {
			if st < 0 {
				return ln - 1
			}
			return ln
		}
		return v
	}
	var lo, hi int64
	if st > 0 {
		lo, hi = clamp(b, hasB, 0), clamp(e, hasE, ln)
	} else {
		lo, hi = clamp(b, hasB, ln-1), clamp(e, hasE, -1)
	}
	var picks []int
	for i := lo; (st > 0 && i < hi) || (st < 0 && i > hi); i += st {
		picks = append(picks, int(i))
	}
	switch x := obj.(type) {
	case string, Markup:
		s, _ := strOf(x)
		rs := []rune(s)
		out := make([]rune, len(picks))
		for i, p := range picks {
			out[i] = rs[p]
		}
		if _, ok := x.(Markup); ok {
			return Markup(out), nil
		}
		return string(out), nil
	case []any:
		out := make([]any, len(picks))
		for i, p := range picks {
			out[i] = x[p]
		}
		return out, nil
	case Tuple:
		out := make(Tuple, len(picks))
		for i, p := range picks {
			out[i] = x[p]
		}
		return out, nil
	}
	return nil, nil
}

// getattr is the sandbox's obj.attr: the attribute (a method, a loop field, a namespace entry), else
// obj[attr], else undefined.
func getattr(obj any, attr string) (any, error) {
	if u, ok := obj.(Undefined); ok {
		return nil, u.fail()
	}
	if v, ok, err := attribute(obj, attr); ok || err != nil {
		return v, err
	}
	switch x := obj.(type) {
	case *Dict:
		if v, ok := x.Get(attr); ok {
			return v, nil
		}
	}
	return undefinedOn(obj, attr), nil
}

// getitem is the sandbox's obj[key]: the item, else (for a string key) the attribute, else undefined.
func getitem(obj, key any) (any, error) {
	if u, ok := obj.(Undefined); ok {
		return nil, u.fail()
	}
	switch x := obj.(type) {
	case *Dict:
		if _, err := hashKey(key); err != nil {
			return nil, err
		}
		if v, ok := x.Get(key); ok {
			return v, nil
		}
	case []any, Tuple, string, Markup:
		if i, ok := toInt(key); ok {
			var n int
			switch y := x.(type) {
			case []any:
				n = len(y)
			case Tuple:
				n = len(y)
			default:
				s, _ := strOf(y)
				n = len([]rune(s))
			}
			if i < 0 {
				i += int64(n)
			}
			if i >= 0 && i < int64(n) {
				switch y := x.(type) {
				case []any:
					return y[i], nil
				case Tuple:
					return y[i], nil
				case Markup:
					return Markup([]rune(string(y))[i]), nil
				case string:
					return string([]rune(y)[i]), nil
				}
			}
			return undefinedOn(obj, key), nil
		}
	}
	if name, ok := key.(string); ok {
		if v, ok, err := attribute(obj, name); ok || err != nil {
			return v, err
		}
	}
	return undefinedOn(obj, key), nil
}

func itoa(i int) string {
	return formatInt(int64(i))
}
