package jinja

type testFunc func(st *state, v any, args []any, kwargs []KwArg) (bool, error)

// tests are Jinja2's built-in tests.
var tests map[string]testFunc

func init() {
	cmp := func(op string) testFunc {
		return func(st *state, v any, args []any, kwargs []KwArg) (bool, error) {
			a, _, err := bindArgs(op, []string{"other"}, 1, true, args, kwargs)
			if err != nil {
				return false, err
			}
			return compareOp(op, v, a[0])
		}
	}
	tests = map[string]testFunc{
		"odd": parityTest(1), "even": parityTest(0), "divisibleby": tDivisibleBy,
		"defined":   func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, u := v.(Undefined); return !u, nil },
		"undefined": func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, u := v.(Undefined); return u, nil },
		"none":      func(st *state, v any, _ []any, _ []KwArg) (bool, error) { return v == nil, nil },
		"boolean":   func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, ok := v.(bool); return ok, nil },
		"false":     func(st *state, v any, _ []any, _ []KwArg) (bool, error) { return v == false, nil },
		"true":      func(st *state, v any, _ []any, _ []KwArg) (bool, error) { return v == true, nil },
		"integer":   func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, ok := v.(int64); return ok, nil },
		"float":     func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, ok := v.(float64); return ok, nil },
		"number":    func(st *state, v any, _ []any, _ []KwArg) (bool, error) { return isNumber(v), nil },
		"string":    func(st *state, v any, _ []any, _ []KwArg) (bool, error) { return isString(v), nil },
		"mapping":   func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, ok := v.(*Dict); return ok, nil },
		"sequence":  tSequence, "iterable": tIterable, "callable": tCallable, "sameas": tSameAs,
		"escaped": func(st *state, v any, _ []any, _ []KwArg) (bool, error) { _, ok := v.(Markup); return ok, nil },
		"in": func(st *state, v any, args []any, kwargs []KwArg) (bool, error) {
			a, _, err := bindArgs("in", []string{"seq"}, 1, true, args, kwargs)
			if err != nil {
				return false, err
			}
			return contains(a[0], v)
		},
		"lower": func(st *state, v any, _ []any, _ []KwArg) (bool, error) {
			return strPredicate("islower", pyStr(v)), nil
		},
		"upper": func(st *state, v any, _ []any, _ []KwArg) (bool, error) {
			return strPredicate("isupper", pyStr(v)), nil
		},
		"==": cmp("eq"), "eq": cmp("eq"), "equalto": cmp("eq"), "!=": cmp("ne"), "ne": cmp("ne"),
		">": cmp("gt"), "gt": cmp("gt"), "greaterthan": cmp("gt"), ">=": cmp("gteq"), "ge": cmp("gteq"),
		"<": cmp("lt"), "lt": cmp("lt"), "lessthan": cmp("lt"), "<=": cmp("lteq"), "le": cmp("lteq"),
		"filter": func(st *state, v any, _ []any, _ []KwArg) (bool, error) {
			s, ok := v.(string)
			return ok && filters[s] != nil, nil
		},
		"test": func(st *state, v any, _ []any, _ []KwArg) (bool, error) {
			s, ok := v.(string)
			return ok && tests[s] != nil, nil
		},
	}
}

func parityTest(want int64) testFunc {
	return func(st *state, v any, args []any, kwargs []KwArg) (bool, error) {
		r, err := st.binaryOp("%", v, int64(2))
		if err != nil {
			return false, err
		}
		return pyEqual(r, want), nil
	}
}

func tDivisibleBy(st *state, v any, args []any, kwargs []KwArg) (bool, error) {
	a, _, err := bindArgs("divisibleby", []string{"num"}, 1, true, args, kwargs)
	if err != nil {
		return false, err
	}
	r, err := st.binaryOp("%", v, a[0])
	if err != nil {
		return false, err
	}
	return pyEqual(r, int64(0)), nil
}

func tSequence(st *state, v any, _ []any, _ []KwArg) (bool, error) {
	switch v.(type) {
	case string, Markup, []any, Tuple, *Dict, Undefined:
		return true, nil
	}
	return false, nil
}

func tIterable(st *state, v any, _ []any, _ []KwArg) (bool, error) {
	switch v.(type) {
	case string, Markup, []any, Tuple, *Dict, *DictView, *Generator, Undefined, *LoopContext:
		return true, nil
	}
	return false, nil
}

func tCallable(st *state, v any, _ []any, _ []KwArg) (bool, error) {
	switch v.(type) {
	case *Macro, *Func, *boundMethod, *Joiner, Undefined, *LoopContext:
		return true, nil
	}
	return false, nil
}

func tSameAs(st *state, v any, args []any, kwargs []KwArg) (bool, error) {
	a, _, err := bindArgs("sameas", []string{"other"}, 1, true, args, kwargs)
	if err != nil {
		return false, err
	}
	o := a[0]
	switch x := v.(type) {
	case nil, bool:
		return v == o, nil
	case int64:
		y, ok := o.(int64)
		return ok && x == y && x >= -5 && x <= 256, nil
	case []any:
		y, ok := o.([]any)
		return ok && len(x) == len(y) && (len(x) == 0 || &x[0] == &y[0]), nil
	case *Dict, *Namespace, *Macro, *Generator:
		return v == o, nil
	}
	return false, nil
}

// applyTest evaluates a test expression.
func (st *state) applyTest(t *testExpr, sc *scope) (any, error) {
	fn := tests[t.name]
	if fn == nil {
		return nil, errorf("TemplateRuntimeError", "No test named %s found.", reprString(t.name))
	}
	v, err := st.eval(t.arg, sc)
	if err != nil {
		return nil, err
	}
	args, err := st.evalList(t.args, sc)
	if err != nil {
		return nil, err
	}
	var kwargs []KwArg
	for _, k := range t.kwargs {
		kv, err := st.eval(k.value, sc)
		if err != nil {
			return nil, err
		}
		kwargs = append(kwargs, KwArg{k.name, kv})
	}
	return fn(st, v, args, kwargs)
}
