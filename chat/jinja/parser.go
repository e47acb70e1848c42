package jinja

import (
	"fmt"
	"strings"
)

// The parser follows jinja2/parser.py, with the statements of the environment transformers builds: the
// core tags, the loopcontrols extension ({% break %}, {% continue %}) and transformers' {% generation %}.

type parser struct {
	lx       *lexer
	toks     []token
	i        int
	endStack [][]string // the end tags the enclosing blocks wait for
	tagStack []string
	soft     int               // > 0 inside if tests, if bodies and inline if-else (unknown filters fail at run time)
	loops    int               // enclosing for loops (in the current macro)
	uses     map[string]bool   // every name the template reads
	reads    []map[string]bool // the names read by each enclosing macro body
	depth    int               // expression nesting
}

func (p *parser) cur() token { return p.toks[p.i] }

func (p *parser) look() token {
	if p.i+1 < len(p.toks) {
		return p.toks[p.i+1]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) failAt(pos int, format string, args ...any) error {
	return p.lx.errAt(pos, fmt.Sprintf(format, args...))
}

func (p *parser) unsupported(pos int, construct string) error {
	line, col := p.lx.lineCol(pos)
	return &UnsupportedError{Name: p.lx.name, Line: line, Col: col, Construct: construct}
}

// isName reports whether the current token is the name s.
func (t token) isName(s string) bool { return t.typ == tkName && t.val == s }

func (t token) isOp(s string) bool { return t.typ == tkOp && t.val == s }

// test matches a Jinja2 token expression: "name:endfor", "block_end", "rparen", ...
func (t token) test(expr string) bool {
	if name, ok := strings.CutPrefix(expr, "name:"); ok {
		return t.isName(name)
	}
	switch expr {
	case "block_end":
		return t.typ == tkBlockEnd
	case "variable_end":
		return t.typ == tkVarEnd
	case "rparen":
		return t.isOp(")")
	}
	return false
}

func describeExpr(expr string) string {
	if name, ok := strings.CutPrefix(expr, "name:"); ok {
		return name
	}
	switch expr {
	case "block_end":
		return "end of statement block"
	case "variable_end":
		return "end of print statement"
	}
	return expr
}

func (p *parser) expectTok(typ tokType, what string) (token, error) {
	t := p.cur()
	if t.typ != typ {
		return t, p.expectedErr(what)
	}
	return p.next(), nil
}

func (p *parser) expectedErr(what string) error {
	t := p.cur()
	if t.typ == tkEOF {
		return p.failAt(t.pos, "unexpected end of template, expected %s.", reprString(what))
	}
	return p.failAt(t.pos, "expected token %s, got %s", reprString(what), reprString(t.describe()))
}

func (p *parser) expectOp(op string) error {
	if !p.cur().isOp(op) {
		return p.expectedErr(op)
	}
	p.next()
	return nil
}

func (p *parser) expectName(name string) error {
	if !p.cur().isName(name) {
		return p.expectedErr(name)
	}
	p.next()
	return nil
}

func (p *parser) expectBlockEnd() error {
	_, err := p.expectTok(tkBlockEnd, "end of statement block")
	return err
}

// parseTemplate parses the whole token stream.
func (p *parser) parseTemplate() ([]stmt, error) {
	body, err := p.subparse(nil)
	if err != nil {
		return nil, err
	}
	if p.cur().typ != tkEOF {
		return nil, p.failAt(p.cur().pos, "unexpected %s", reprString(p.cur().describe()))
	}
	return body, nil
}

// subparse parses statements and data until one of endTokens (a tag name) opens a block tag; the
// current token is then that name.
func (p *parser) subparse(endTokens []string) ([]stmt, error) {
	var body []stmt
	var data []any
	dataPos := 0
	flush := func() {
		if len(data) > 0 {
			body = append(body, &outputStmt{sbase{dataPos}, data})
			data = nil
		}
	}
	if endTokens != nil {
		p.endStack = append(p.endStack, endTokens)
		defer func() { p.endStack = p.endStack[:len(p.endStack)-1] }()
	}
	for p.cur().typ != tkEOF {
		t := p.cur()
		switch t.typ {
		case tkData:
			if len(data) == 0 {
				dataPos = t.pos
			}
			data = append(data, t.val)
			p.next()
		case tkVarBegin:
			if len(data) == 0 {
				dataPos = t.pos
			}
			p.next()
			e, err := p.parseTuple(true, nil, false)
			if err != nil {
				return nil, err
			}
			data = append(data, e)
			if _, err := p.expectTok(tkVarEnd, "end of print statement"); err != nil {
				return nil, err
			}
		case tkBlockBegin:
			flush()
			p.next()
			for _, end := range endTokens {
				if p.cur().test(end) {
					return body, nil
				}
			}
			s, err := p.parseStatement()
			if err != nil {
				return nil, err
			}
			if s != nil {
				body = append(body, s)
			}
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
		default:
			return nil, p.failAt(t.pos, "unexpected %s", reprString(t.describe()))
		}
	}
	flush()
	return body, nil
}

// parseStatements parses a block's body up to one of endTokens; with dropNeedle the end tag's name is
// consumed.
func (p *parser) parseStatements(endTokens []string, dropNeedle bool) ([]stmt, error) {
	if p.cur().isOp(":") {
		p.next()
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, err := p.subparse(endTokens)
	if err != nil {
		return nil, err
	}
	if p.cur().typ == tkEOF {
		return nil, p.eofErr(endTokens)
	}
	if dropNeedle {
		p.next()
	}
	return body, nil
}

// eofErr is Jinja2's "Unexpected end of template" message.
func (p *parser) eofErr(endTokens []string) error {
	stack := append(append([][]string(nil), p.endStack...), endTokens)
	msg := "Unexpected end of template."
	if len(stack) > 0 && len(stack[len(stack)-1]) > 0 {
		var names []string
		for _, e := range stack[len(stack)-1] {
			names = append(names, reprString(describeExpr(e)))
		}
		msg += " Jinja was looking for the following tags: " + strings.Join(names, " or ") + "."
	}
	if len(p.tagStack) > 0 {
		msg += " The innermost block that needs to be closed is " + reprString(p.tagStack[len(p.tagStack)-1]) + "."
	}
	return p.failAt(p.cur().pos, "%s", msg)
}

func (p *parser) unknownTagErr(t token) error {
	msg := "Encountered unknown tag " + reprString(t.val) + "."
	if len(p.endStack) > 0 {
		var names []string
		expected := map[string]bool{}
		for _, ends := range p.endStack {
			for _, e := range ends {
				expected[describeExpr(e)] = true
			}
		}
		for _, e := range p.endStack[len(p.endStack)-1] {
			names = append(names, reprString(describeExpr(e)))
		}
		if expected[t.val] {
			msg += " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for " + strings.Join(names, " or ") + "."
		} else {
			msg += " Jinja was looking for the following tags: " + strings.Join(names, " or ") + "."
		}
	}
	if len(p.tagStack) > 0 {
		msg += " The innermost block that needs to be closed is " + reprString(p.tagStack[len(p.tagStack)-1]) + "."
	}
	return p.failAt(t.pos, "%s", msg)
}

var statementTags = map[string]bool{"for": true, "if": true, "set": true, "macro": true, "call": true, "filter": true,
	"with": true, "print": true, "break": true, "continue": true, "generation": true, "block": true, "extends": true,
	"include": true, "import": true, "from": true, "autoescape": true}

func (p *parser) parseStatement() (stmt, error) {
	t := p.cur()
	if t.typ != tkName {
		return nil, p.failAt(t.pos, "tag name expected")
	}
	if !statementTags[t.val] {
		return nil, p.unknownTagErr(t)
	}
	p.tagStack = append(p.tagStack, t.val)
	defer func() { p.tagStack = p.tagStack[:len(p.tagStack)-1] }()
	switch t.val {
	case "for":
		return p.parseFor()
	case "if":
		return p.parseIf()
	case "set":
		return p.parseSet()
	case "macro":
		return p.parseMacro()
	case "call":
		return p.parseCallBlock()
	case "filter":
		return p.parseFilterBlock()
	case "with":
		return p.parseWith()
	case "print":
		p.next()
		s := &outputStmt{sbase: sbase{t.pos}}
		for p.cur().typ != tkBlockEnd {
			if len(s.items) > 0 {
				if err := p.expectOp(","); err != nil {
					return nil, err
				}
			}
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			s.items = append(s.items, e)
		}
		return s, nil
	case "break", "continue":
		p.next()
		if p.loops == 0 {
			return nil, p.failAt(t.pos, "%s outside loop", reprString(t.val))
		}
		if t.val == "break" {
			return &breakStmt{sbase{t.pos}}, nil
		}
		return &continueStmt{sbase{t.pos}}, nil
	case "generation":
		p.next()
		var body []stmt
		err := p.inner(func() (err error) {
			body, err = p.parseStatements([]string{"name:endgeneration"}, true)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &scopeStmt{sbase{t.pos}, body}, nil
	}
	return nil, p.unsupported(t.pos, "{% "+t.val+" %}")
}

func (p *parser) parseFor() (stmt, error) {
	pos := p.next().pos
	target, err := p.parseAssignTarget(true, false, []string{"name:in"}, false)
	if err != nil {
		return nil, err
	}
	if err := p.expectName("in"); err != nil {
		return nil, err
	}
	iter, err := p.parseTuple(false, []string{"name:recursive"}, false)
	if err != nil {
		return nil, err
	}
	s := &forStmt{sbase: sbase{pos}, target: target, iter: iter}
	if p.cur().isName("if") {
		p.next()
		if s.test, err = p.parseExpression(true); err != nil {
			return nil, err
		}
	}
	if p.cur().isName("recursive") {
		return nil, p.unsupported(p.cur().pos, "recursive for loops")
	}
	soft := p.soft
	p.soft = 0
	p.loops++
	s.body, err = p.parseStatements([]string{"name:endfor", "name:else"}, false)
	p.loops--
	if err != nil {
		return nil, err
	}
	if p.next().val == "else" {
		if s.els, err = p.parseStatements([]string{"name:endfor"}, true); err != nil {
			return nil, err
		}
	}
	p.soft = soft
	return s, nil
}

func (p *parser) parseIf() (stmt, error) {
	pos := p.next().pos
	p.soft++
	defer func() { p.soft-- }()
	result := &ifStmt{sbase: sbase{pos}}
	n := result
	for {
		test, err := p.parseTuple(false, nil, false)
		if err != nil {
			return nil, err
		}
		n.test = test
		if n.body, err = p.parseStatements([]string{"name:elif", "name:else", "name:endif"}, false); err != nil {
			return nil, err
		}
		t := p.next()
		if t.isName("elif") {
			elif := &ifStmt{sbase: sbase{t.pos}}
			n.els = []stmt{elif}
			n = elif
			continue
		}
		if t.isName("else") {
			if n.els, err = p.parseStatements([]string{"name:endif"}, true); err != nil {
				return nil, err
			}
		}
		return result, nil
	}
}

func (p *parser) parseSet() (stmt, error) {
	pos := p.next().pos
	target, err := p.parseAssignTarget(true, false, nil, true)
	if err != nil {
		return nil, err
	}
	if p.cur().isOp("=") {
		p.next()
		value, err := p.parseTuple(true, nil, false)
		if err != nil {
			return nil, err
		}
		return &assignStmt{sbase{pos}, target, value}, nil
	}
	s := &assignBlockStmt{sbase: sbase{pos}, target: target}
	if p.cur().isOp("|") {
		f, err := p.parseFilter(nil, false)
		if err != nil {
			return nil, err
		}
		s.filter = f.(*filterExpr)
	}
	soft := p.soft
	p.soft = 0
	defer func() { p.soft = soft }()
	if s.body, err = p.parseStatements([]string{"name:endset"}, true); err != nil {
		return nil, err
	}
	return s, nil
}

// parseSignature parses a macro's or call block's (name, name=default, ...).
func (p *parser) parseSignature() ([]string, []expr, error) {
	var args []string
	var defaults []expr
	if err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	for !p.cur().isOp(")") {
		if len(args) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, nil, err
			}
		}
		t, err := p.expectTok(tkName, "name")
		if err != nil {
			return nil, nil, err
		}
		if p.cur().isOp("=") {
			p.next()
			d, err := p.parseExpression(true)
			if err != nil {
				return nil, nil, err
			}
			defaults = append(defaults, d)
		} else if len(defaults) > 0 {
			return nil, nil, p.failAt(t.pos, "non-default argument follows default argument")
		}
		args = append(args, t.val)
	}
	p.next()
	return args, defaults, nil
}

// inner runs f with the state of a new function or inner frame: no enclosing loop, not soft.
func (p *parser) inner(f func() error) error {
	soft, loops := p.soft, p.loops
	p.soft, p.loops = 0, 0
	defer func() { p.soft, p.loops = soft, loops }()
	return f()
}

func (p *parser) parseMacro() (stmt, error) {
	pos := p.next().pos
	name, err := p.expectTok(tkName, "name")
	if err != nil {
		return nil, err
	}
	s := &macroStmt{sbase: sbase{pos}, name: name.val}
	if s.args, s.defaults, err = p.parseSignature(); err != nil {
		return nil, err
	}
	s.reads = map[string]bool{}
	p.reads = append(p.reads, s.reads)
	err = p.inner(func() error {
		s.body, err = p.parseStatements([]string{"name:endmacro"}, true)
		return err
	})
	p.reads = p.reads[:len(p.reads)-1]
	return s, err
}

func (p *parser) parseCallBlock() (stmt, error) {
	pos := p.next().pos
	s := &callBlockStmt{sbase: sbase{pos}}
	var err error
	if p.cur().isOp("(") {
		if s.args, s.defaults, err = p.parseSignature(); err != nil {
			return nil, err
		}
	}
	call, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	c, ok := call.(*callExpr)
	if !ok {
		return nil, p.failAt(pos, "expected call")
	}
	s.call = c
	s.reads = map[string]bool{}
	p.reads = append(p.reads, s.reads)
	err = p.inner(func() error {
		s.body, err = p.parseStatements([]string{"name:endcall"}, true)
		return err
	})
	p.reads = p.reads[:len(p.reads)-1]
	return s, err
}

func (p *parser) parseFilterBlock() (stmt, error) {
	pos := p.next().pos
	f, err := p.parseFilter(nil, true)
	if err != nil {
		return nil, err
	}
	s := &filterBlockStmt{sbase: sbase{pos}, filter: f.(*filterExpr)}
	soft := p.soft
	p.soft = 0
	defer func() { p.soft = soft }()
	s.body, err = p.parseStatements([]string{"name:endfilter"}, true)
	return s, err
}

func (p *parser) parseWith() (stmt, error) {
	pos := p.next().pos
	s := &withStmt{sbase: sbase{pos}}
	for p.cur().typ != tkBlockEnd {
		if len(s.targets) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		target, err := p.parseAssignTarget(true, false, nil, false)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		value, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		s.targets = append(s.targets, target)
		s.values = append(s.values, value)
	}
	soft := p.soft
	p.soft = 0
	defer func() { p.soft = soft }()
	var err error
	s.body, err = p.parseStatements([]string{"name:endwith"}, true)
	return s, err
}

// parseAssignTarget parses what {% set %}, {% for %} and {% with %} assign to: a name, a tuple of
// names, or (with withNamespace) ns.attr.
func (p *parser) parseAssignTarget(withTuple, nameOnly bool, extraEnd []string, withNamespace bool) (expr, error) {
	var target expr
	var err error
	if nameOnly {
		t, err := p.expectTok(tkName, "name")
		if err != nil {
			return nil, err
		}
		return &nameExpr{base{t.pos}, t.val}, nil
	}
	if withTuple {
		target, err = p.parseTupleSimplified(extraEnd, withNamespace)
	} else {
		target, err = p.parsePrimary(withNamespace)
	}
	if err != nil {
		return nil, err
	}
	if !canAssign(target) {
		return nil, p.failAt(target.position(), "can't assign to %s", reprString(nodeKind(target)))
	}
	return target, nil
}

func canAssign(e expr) bool {
	switch x := e.(type) {
	case *nameExpr:
		switch x.name {
		case "true", "false", "none", "True", "False", "None":
			return false
		}
		return true
	case *nsRefExpr:
		return true
	case *tupleExpr:
		for _, it := range x.items {
			if !canAssign(it) {
				return false
			}
		}
		return true
	}
	return false
}

func nodeKind(e expr) string {
	switch e.(type) {
	case *constExpr:
		return "const"
	case *tupleExpr:
		return "tuple"
	case *listExpr:
		return "list"
	case *dictExpr:
		return "dict"
	case *getattrExpr:
		return "getattr"
	case *getitemExpr:
		return "getitem"
	case *callExpr:
		return "call"
	}
	return "expr"
}

func (p *parser) parseExpression(withCondExpr bool) (expr, error) {
	if withCondExpr {
		return p.parseCondExpr()
	}
	return p.parseOr()
}

func (p *parser) parseCondExpr() (expr, error) {
	pos := p.cur().pos
	e1, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.cur().isName("if") {
		p.next()
		p.soft++
		e2, err := p.parseOr()
		if err != nil {
			p.soft--
			return nil, err
		}
		var e3 expr
		if p.cur().isName("else") {
			p.next()
			if e3, err = p.parseCondExpr(); err != nil {
				p.soft--
				return nil, err
			}
		}
		p.soft--
		e1 = &condExpr{base{pos}, e2, e1, e3}
		pos = p.cur().pos
	}
	return e1, nil
}

func (p *parser) parseOr() (expr, error) {
	pos := p.cur().pos
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.cur().isName("or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &orExpr{base{pos}, left, right}
		pos = p.cur().pos
	}
	return left, nil
}

func (p *parser) parseAnd() (expr, error) {
	pos := p.cur().pos
	left, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.cur().isName("and") {
		p.next()
		right, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		left = &andExpr{base{pos}, left, right}
		pos = p.cur().pos
	}
	return left, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.cur().isName("not") {
		pos := p.next().pos
		arg, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &notExpr{base{pos}, arg}, nil
	}
	return p.parseCompare()
}

var compareOps = map[string]string{"==": "eq", "!=": "ne", "<": "lt", "<=": "lteq", ">": "gt", ">=": "gteq"}

func (p *parser) parseCompare() (expr, error) {
	pos := p.cur().pos
	e, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	var ops []operand
	for {
		t := p.cur()
		var op string
		switch {
		case t.typ == tkOp && compareOps[t.val] != "":
			p.next()
			op = compareOps[t.val]
		case t.isName("in"):
			p.next()
			op = "in"
		case t.isName("not") && p.look().isName("in"):
			p.next()
			p.next()
			op = "notin"
		}
		if op == "" {
			break
		}
		arg, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		ops = append(ops, operand{op, arg})
	}
	if len(ops) == 0 {
		return e, nil
	}
	return &compareExpr{base{pos}, e, ops}, nil
}

func (p *parser) parseMath1() (expr, error) {
	pos := p.cur().pos
	left, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	for p.cur().isOp("+") || p.cur().isOp("-") {
		op := p.next().val
		right, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		left = &binExpr{base{pos}, op, left, right}
		pos = p.cur().pos
	}
	return left, nil
}

func (p *parser) parseConcat() (expr, error) {
	pos := p.cur().pos
	first, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	items := []expr{first}
	for p.cur().isOp("~") {
		p.next()
		e, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 1 {
		return first, nil
	}
	return &concatExpr{base{pos}, items}, nil
}

func (p *parser) parseMath2() (expr, error) {
	pos := p.cur().pos
	left, err := p.parsePow()
	if err != nil {
		return nil, err
	}
	for t := p.cur(); t.isOp("*") || t.isOp("/") || t.isOp("//") || t.isOp("%"); t = p.cur() {
		p.next()
		right, err := p.parsePow()
		if err != nil {
			return nil, err
		}
		left = &binExpr{base{pos}, t.val, left, right}
		pos = p.cur().pos
	}
	return left, nil
}

func (p *parser) parsePow() (expr, error) {
	pos := p.cur().pos
	left, err := p.parseUnary(true)
	if err != nil {
		return nil, err
	}
	for p.cur().isOp("**") {
		p.next()
		right, err := p.parseUnary(true)
		if err != nil {
			return nil, err
		}
		left = &binExpr{base{pos}, "**", left, right}
		pos = p.cur().pos
	}
	return left, nil
}

const maxNesting = 300

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	t := p.cur()
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxNesting {
		return nil, p.failAt(t.pos, "expression nested too deeply")
	}
	var e expr
	var err error
	switch {
	case t.isOp("-"):
		p.next()
		arg, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &negExpr{base{t.pos}, arg}
	case t.isOp("+"):
		p.next()
		arg, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &posExpr{base{t.pos}, arg}
	default:
		if e, err = p.parsePrimary(false); err != nil {
			return nil, err
		}
	}
	if e, err = p.parsePostfix(e); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(e)
	}
	return e, nil
}

func (p *parser) parsePrimary(withNamespace bool) (expr, error) {
	t := p.cur()
	switch t.typ {
	case tkName:
		p.next()
		switch t.val {
		case "true", "True":
			return &constExpr{base{t.pos}, true}, nil
		case "false", "False":
			return &constExpr{base{t.pos}, false}, nil
		case "none", "None":
			return &constExpr{base{t.pos}, nil}, nil
		}
		if withNamespace && p.cur().isOp(".") {
			p.next()
			attr, err := p.expectTok(tkName, "name")
			if err != nil {
				return nil, err
			}
			return &nsRefExpr{base{t.pos}, t.val, attr.val}, nil
		}
		if t.val == "lipsum" {
			return nil, p.unsupported(t.pos, "the global lipsum (random text)")
		}
		p.uses[t.val] = true
		for _, r := range p.reads {
			r[t.val] = true
		}
		return &nameExpr{base{t.pos}, t.val}, nil
	case tkString:
		p.next()
		var sb strings.Builder
		sb.WriteString(t.val)
		for p.cur().typ == tkString {
			sb.WriteString(p.next().val)
		}
		return &constExpr{base{t.pos}, sb.String()}, nil
	case tkInt, tkFloat:
		p.next()
		return &constExpr{base{t.pos}, t.num}, nil
	case tkOp:
		switch t.val {
		case "(":
			p.next()
			e, err := p.parseTuple(true, nil, true)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			return p.parseList()
		case "{":
			return p.parseDict()
		}
	}
	return nil, p.failAt(t.pos, "unexpected %s", reprString(t.describe()))
}

func (p *parser) isTupleEnd(extraEnd []string) bool {
	t := p.cur()
	if t.typ == tkVarEnd || t.typ == tkBlockEnd || t.isOp(")") {
		return true
	}
	for _, e := range extraEnd {
		if t.test(e) {
			return true
		}
	}
	return false
}

// parseTuple parses an expression, or a tuple of expressions separated by commas.
func (p *parser) parseTuple(withCondExpr bool, extraEnd []string, explicitParens bool) (expr, error) {
	return p.parseTupleWith(func() (expr, error) { return p.parseExpression(withCondExpr) }, extraEnd, explicitParens)
}

func (p *parser) parseTupleSimplified(extraEnd []string, withNamespace bool) (expr, error) {
	return p.parseTupleWith(func() (expr, error) { return p.parsePrimary(withNamespace) }, extraEnd, false)
}

func (p *parser) parseTupleWith(parse func() (expr, error), extraEnd []string, explicitParens bool) (expr, error) {
	pos := p.cur().pos
	var items []expr
	isTuple := false
	for {
		if len(items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isTupleEnd(extraEnd) {
			break
		}
		e, err := parse()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
		if p.cur().isOp(",") {
			isTuple = true
		} else {
			break
		}
	}
	if !isTuple {
		if len(items) > 0 {
			return items[0], nil
		}
		if !explicitParens {
			return nil, p.failAt(p.cur().pos, "Expected an expression, got %s", reprString(p.cur().describe()))
		}
	}
	return &tupleExpr{base{pos}, items}, nil
}

func (p *parser) parseList() (expr, error) {
	t := p.next()
	l := &listExpr{base: base{t.pos}}
	for !p.cur().isOp("]") {
		if len(l.items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.cur().isOp("]") {
			break
		}
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		l.items = append(l.items, e)
	}
	return l, p.expectOp("]")
}

func (p *parser) parseDict() (expr, error) {
	t := p.next()
	d := &dictExpr{base: base{t.pos}}
	for !p.cur().isOp("}") {
		if len(d.keys) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.cur().isOp("}") {
			break
		}
		k, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(":"); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		d.keys = append(d.keys, k)
		d.values = append(d.values, v)
	}
	return d, p.expectOp("}")
}

func (p *parser) parsePostfix(e expr) (expr, error) {
	for {
		var err error
		switch t := p.cur(); {
		case t.isOp(".") || t.isOp("["):
			e, err = p.parseSubscript(e)
		case t.isOp("("):
			e, err = p.parseCall(e)
		default:
			return e, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseFilterExpr(e expr) (expr, error) {
	for {
		var err error
		switch t := p.cur(); {
		case t.isOp("|"):
			e, err = p.parseFilter(e, false)
		case t.isName("is"):
			e, err = p.parseTest(e)
		case t.isOp("("):
			e, err = p.parseCall(e)
		default:
			return e, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseSubscript(e expr) (expr, error) {
	t := p.next()
	if t.isOp(".") {
		attr := p.next()
		switch attr.typ {
		case tkName:
			return &getattrExpr{base{t.pos}, e, attr.val}, nil
		case tkInt:
			return &getitemExpr{base{t.pos}, e, &constExpr{base{attr.pos}, attr.num}}, nil
		}
		return nil, p.failAt(attr.pos, "expected name or number")
	}
	var args []expr
	for !p.cur().isOp("]") {
		if len(args) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		a, err := p.parseSubscribed()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	if err := p.expectOp("]"); err != nil {
		return nil, err
	}
	if len(args) == 1 {
		return &getitemExpr{base{t.pos}, e, args[0]}, nil
	}
	return &getitemExpr{base{t.pos}, e, &tupleExpr{base{t.pos}, args}}, nil
}

func (p *parser) parseSubscribed() (expr, error) {
	pos := p.cur().pos
	var args []expr
	if p.cur().isOp(":") {
		p.next()
		args = []expr{nil}
	} else {
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if !p.cur().isOp(":") {
			return e, nil
		}
		p.next()
		args = []expr{e}
	}
	endOfPart := func() bool { return p.cur().isOp("]") || p.cur().isOp(",") }
	if p.cur().isOp(":") {
		args = append(args, nil)
	} else if !endOfPart() {
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	} else {
		args = append(args, nil)
	}
	if p.cur().isOp(":") {
		p.next()
		if !endOfPart() {
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			args = append(args, e)
		} else {
			args = append(args, nil)
		}
	} else {
		args = append(args, nil)
	}
	return &sliceExpr{base{pos}, args[0], args[1], args[2]}, nil
}

func (p *parser) parseCallArgs() ([]expr, []keyword, error) {
	open := p.cur()
	if err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	var args []expr
	var kwargs []keyword
	requireComma := false
	for !p.cur().isOp(")") {
		if requireComma {
			if err := p.expectOp(","); err != nil {
				return nil, nil, err
			}
			if p.cur().isOp(")") {
				break
			}
		}
		switch t := p.cur(); {
		case t.isOp("*") || t.isOp("**"):
			return nil, nil, p.unsupported(t.pos, "*args and **kwargs in calls")
		case t.typ == tkName && p.look().isOp("="):
			p.next()
			p.next()
			v, err := p.parseExpression(true)
			if err != nil {
				return nil, nil, err
			}
			kwargs = append(kwargs, keyword{t.val, v})
		default:
			if len(kwargs) > 0 {
				return nil, nil, p.failAt(open.pos, "invalid syntax for function call expression")
			}
			v, err := p.parseExpression(true)
			if err != nil {
				return nil, nil, err
			}
			args = append(args, v)
		}
		requireComma = true
	}
	p.next()
	return args, kwargs, nil
}

func (p *parser) parseCall(fn expr) (expr, error) {
	pos := p.cur().pos
	args, kwargs, err := p.parseCallArgs()
	if err != nil {
		return nil, err
	}
	return &callExpr{base{pos}, fn, args, kwargs}, nil
}

// dottedName parses name(.name)* after | or is.
func (p *parser) dottedName() (token, string, error) {
	t, err := p.expectTok(tkName, "name")
	if err != nil {
		return t, "", err
	}
	name := t.val
	for p.cur().isOp(".") {
		p.next()
		n, err := p.expectTok(tkName, "name")
		if err != nil {
			return t, "", err
		}
		name += "." + n.val
	}
	return t, name, nil
}

func (p *parser) parseFilter(e expr, startInline bool) (expr, error) {
	for p.cur().isOp("|") || startInline {
		if !startInline {
			p.next()
		}
		t, name, err := p.dottedName()
		if err != nil {
			return nil, err
		}
		if err := p.checkFilter(t.pos, name); err != nil {
			return nil, err
		}
		f := &filterExpr{base: base{t.pos}, arg: e, name: name}
		if p.cur().isOp("(") {
			if f.args, f.kwargs, err = p.parseCallArgs(); err != nil {
				return nil, err
			}
		}
		e = f
		startInline = false
	}
	return e, nil
}

func (p *parser) parseTest(e expr) (expr, error) {
	isTok := p.next()
	negated := false
	if p.cur().isName("not") {
		p.next()
		negated = true
	}
	t, name, err := p.dottedName()
	if err != nil {
		return nil, err
	}
	if err := p.checkTest(t.pos, name); err != nil {
		return nil, err
	}
	te := &testExpr{base: base{isTok.pos}, arg: e, name: name}
	cur := p.cur()
	switch {
	case cur.isOp("("):
		if te.args, te.kwargs, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	case (cur.typ == tkName || cur.typ == tkString || cur.typ == tkInt || cur.typ == tkFloat ||
		cur.isOp("(") || cur.isOp("[") || cur.isOp("{")) &&
		!cur.isName("else") && !cur.isName("or") && !cur.isName("and"):
		if cur.isName("is") {
			return nil, p.failAt(cur.pos, "You cannot chain multiple tests with is")
		}
		arg, err := p.parsePrimary(false)
		if err != nil {
			return nil, err
		}
		if arg, err = p.parsePostfix(arg); err != nil {
			return nil, err
		}
		te.args = []expr{arg}
	}
	if negated {
		return &notExpr{base{isTok.pos}, te}, nil
	}
	return te, nil
}

// checkFilter refuses, where Jinja2 does at compile time, a filter no Jinja2 environment has; a filter
// Jinja2 has and this engine does not is refused as unsupported.
func (p *parser) checkFilter(pos int, name string) error {
	if _, ok := filters[name]; ok {
		return nil
	}
	if jinjaOnlyFilters[name] {
		return p.unsupported(pos, "filter "+name)
	}
	if p.soft > 0 {
		return nil // raises when evaluated
	}
	line, col := p.lx.lineCol(pos)
	return &SyntaxError{Name: p.lx.name, Line: line, Col: col, Msg: "No filter named " + reprString(name) + "."}
}

func (p *parser) checkTest(pos int, name string) error {
	if _, ok := tests[name]; ok {
		return nil
	}
	if p.soft > 0 {
		return nil
	}
	line, col := p.lx.lineCol(pos)
	return &SyntaxError{Name: p.lx.name, Line: line, Col: col, Msg: "No test named " + reprString(name) + "."}
}
