package jinja

import (
	"strings"
)

func (st *state) evalCall(x *callExpr, sc *scope) (any, error) {
	fn, err := st.eval(x.fn, sc)
	if err != nil {
		return nil, err
	}
	args, err := st.evalList(x.args, sc)
	if err != nil {
		return nil, err
	}
	var kwargs []KwArg
	for _, k := range x.kwargs {
		v, err := st.eval(k.value, sc)
		if err != nil {
			return nil, err
		}
		kwargs = append(kwargs, KwArg{k.name, v})
	}
	return st.call(fn, args, kwargs)
}

// call calls a callable value.
func (st *state) call(fn any, args []any, kwargs []KwArg) (any, error) {
	switch f := fn.(type) {
	case *Macro:
		return st.callMacro(f, args, kwargs)
	case *Func:
		return f.fn(st, args, kwargs)
	case *boundMethod:
		return st.callMethod(f.recv, f.name, args, kwargs)
	case Undefined:
		return nil, f.fail()
	case *Joiner:
		if len(args) > 0 || len(kwargs) > 0 {
			return nil, typeErrorf("Joiner.__call__() takes 1 positional argument but %d were given", len(args)+1)
		}
		if !f.used {
			f.used = true
			return "", nil
		}
		return f.sep, nil
	}
	return nil, typeErrorf("'%s' object is not callable", pyTypeName(fn))
}

// callMacro is jinja2.runtime.Macro.__call__ followed by the macro's body.
func (st *state) callMacro(m *Macro, args []any, kwargs []KwArg) (any, error) {
	if st.depth >= maxCallDepth {
		return nil, errorf("RecursionError", "maximum recursion depth exceeded")
	}
	if err := st.step(); err != nil {
		return nil, err
	}
	st.depth++
	defer func() { st.depth-- }()
	sc := newScope(m.closure)
	kw := map[string]any{}
	var kwOrder []string
	for _, k := range kwargs {
		if _, dup := kw[k.Name]; dup {
			return nil, typeErrorf("keyword argument repeated: %s", k.Name)
		}
		kw[k.Name] = k.Value
		kwOrder = append(kwOrder, k.Name)
	}
	n := len(m.args)
	firstDefault := n - len(m.defaults)
	for i, name := range m.args {
		var v any
		provided := false
		if i < len(args) {
			v, provided = args[i], true
			if _, dup := kw[name]; dup {
				return nil, typeErrorf("macro %s got multiple values for argument %s", reprString(m.name), reprString(name))
			}
		} else if kv, ok := kw[name]; ok {
			v, provided = kv, true
			delete(kw, name)
		}
		if !provided {
			if i >= firstDefault {
				dv, err := st.eval(m.defaults[i-firstDefault], sc)
				if err != nil {
					return nil, err
				}
				v = dv
			} else {
				v = Undefined{name: name, hint: "parameter " + reprString(name) + " was not provided"}
			}
		}
		sc.set(name, v)
	}
	if m.hasCaller {
		if c, ok := kw["caller"]; ok {
			sc.set("caller", c)
			delete(kw, "caller")
		} else {
			sc.set("caller", Undefined{name: "caller", hint: "No caller defined"})
		}
	}
	if m.catchKw {
		d := NewDict()
		for _, k := range kwOrder {
			if v, ok := kw[k]; ok {
				d.Set(k, v)
			}
		}
		sc.set("kwargs", d)
	} else if len(kw) > 0 {
		for _, k := range kwOrder {
			if _, ok := kw[k]; !ok {
				continue
			}
			if k == "caller" {
				return nil, typeErrorf("macro %s was invoked with two values for the special caller argument. This is most likely a bug.", reprString(m.name))
			}
			return nil, typeErrorf("macro %s takes no keyword argument %s", reprString(m.name), reprString(k))
		}
	}
	if m.catchVar {
		var extra Tuple
		if len(args) > n {
			extra = append(extra, args[n:]...)
		}
		if extra == nil {
			extra = Tuple{}
		}
		sc.set("varargs", extra)
	} else if len(args) > n {
		return nil, typeErrorf("macro %s takes not more than %d argument(s)", reprString(m.name), n)
	}
	var out strings.Builder
	if err := st.exec(m.body, sc, &out); err != nil {
		return nil, err
	}
	return out.String(), nil
}

// attribute looks up a real attribute of obj (not an item): methods, loop fields, namespace entries.
// ok is false when obj has no such attribute.
func attribute(obj any, name string) (any, bool, error) {
	if strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
		return Undefined{obj: obj, name: name, hasObj: true, exc: "SecurityError",
			hint: "access to attribute " + reprString(name) + " of " + reprString(pyTypeName(obj)) + " object is unsafe."}, true, nil
	}
	switch x := obj.(type) {
	case string, Markup:
		if strMethods[name] {
			return &boundMethod{obj, name}, true, nil
		}
	case *Dict:
		if dictMethods[name] {
			return &boundMethod{obj, name}, true, nil
		}
		if unsafeDictMethods[name] {
			return unsafeAttr(obj, name), true, nil
		}
	case []any:
		if listMethods[name] {
			return &boundMethod{obj, name}, true, nil
		}
		if unsafeListMethods[name] {
			return unsafeAttr(obj, name), true, nil
		}
	case Tuple:
		if name == "index" || name == "count" {
			return &boundMethod{obj, name}, true, nil
		}
	case *Namespace:
		if v, ok := x.attrs.Get(name); ok {
			return v, true, nil
		}
	case *LoopContext:
		return x.attr(name)
	case *Cycler:
		switch name {
		case "next", "reset":
			return &boundMethod{obj, name}, true, nil
		case "current":
			return x.items[x.pos], true, nil
		case "items":
			return append([]any(nil), x.items...), true, nil
		}
	case *DictView:
		if name == "mapping" {
			return x.d, true, nil
		}
	case int64, bool:
		switch name {
		case "real", "numerator":
			i, _ := toInt(x)
			return i, true, nil
		case "imag":
			return int64(0), true, nil
		case "denominator":
			return int64(1), true, nil
		}
	case float64:
		switch name {
		case "real":
			return x, true, nil
		case "imag":
			return 0.0, true, nil
		case "is_integer":
			return &boundMethod{obj, name}, true, nil
		}
	}
	return nil, false, nil
}

func unsafeAttr(obj any, name string) Undefined {
	return Undefined{obj: obj, name: name, hasObj: true, exc: "SecurityError",
		hint: "access to attribute " + reprString(name) + " of " + reprString(pyTypeName(obj)) + " object is unsafe."}
}

func (l *LoopContext) attr(name string) (any, bool, error) {
	n := int64(len(l.items))
	i := int64(l.index)
	switch name {
	case "index":
		return i + 1, true, nil
	case "index0":
		return i, true, nil
	case "revindex":
		return n - i, true, nil
	case "revindex0":
		return n - i - 1, true, nil
	case "first":
		return i == 0, true, nil
	case "last":
		return i == n-1, true, nil
	case "length":
		return n, true, nil
	case "depth":
		return int64(1), true, nil
	case "depth0":
		return int64(0), true, nil
	case "previtem":
		if i == 0 {
			return undefinedHint("there is no previous item"), true, nil
		}
		return l.items[i-1], true, nil
	case "nextitem":
		if i == n-1 {
			return undefinedHint("there is no next item"), true, nil
		}
		return l.items[i+1], true, nil
	case "cycle", "changed":
		return &boundMethod{l, name}, true, nil
	}
	return nil, false, nil
}

// Cycler is what cycler(...) returns.
type Cycler struct {
	items []any
	pos   int
}

// Joiner is what joiner(sep) returns.
type Joiner struct {
	sep  string
	used bool
}
