package jinja

// The syntax tree mirrors jinja2.nodes for the constructs chat templates use.

type node interface{ position() int }

type expr interface {
	node
	isExpr()
}

type base struct{ pos int }

func (b base) position() int { return b.pos }
func (base) isExpr()         {}

type (
	constExpr struct {
		base
		value any
	}
	nameExpr struct {
		base
		name string
	}
	// nsRefExpr is an assignment target ns.attr.
	nsRefExpr struct {
		base
		name, attr string
	}
	tupleExpr struct {
		base
		items []expr
	}
	listExpr struct {
		base
		items []expr
	}
	dictExpr struct {
		base
		keys, values []expr
	}
	getattrExpr struct {
		base
		obj  expr
		attr string
	}
	getitemExpr struct {
		base
		obj, arg expr
	}
	sliceExpr struct {
		base
		start, stop, step expr // each may be nil
	}
	keyword struct {
		name  string
		value expr
	}
	callExpr struct {
		base
		fn     expr
		args   []expr
		kwargs []keyword
	}
	filterExpr struct {
		base
		arg    expr // nil in {% filter %} and {% set x | f %}: the body is the input
		name   string
		args   []expr
		kwargs []keyword
	}
	testExpr struct {
		base
		arg    expr
		name   string
		args   []expr
		kwargs []keyword
	}
	condExpr struct {
		base
		test, then, els expr // els may be nil
	}
	andExpr struct {
		base
		left, right expr
	}
	orExpr struct {
		base
		left, right expr
	}
	notExpr struct {
		base
		arg expr
	}
	negExpr struct {
		base
		arg expr
	}
	posExpr struct {
		base
		arg expr
	}
	binExpr struct {
		base
		op          string // + - * / // % **
		left, right expr
	}
	concatExpr struct {
		base
		items []expr
	}
	operand struct {
		op  string // eq ne lt lteq gt gteq in notin
		arg expr
	}
	compareExpr struct {
		base
		arg expr
		ops []operand
	}
)

type stmt interface{ node }

type sbase struct{ pos int }

func (b sbase) position() int { return b.pos }

type (
	// outputStmt prints its items: string template data or expressions.
	outputStmt struct {
		sbase
		items []any // string or expr
	}
	forStmt struct {
		sbase
		target expr
		iter   expr
		test   expr // the loop's "if" filter, may be nil
		body   []stmt
		els    []stmt
	}
	ifStmt struct {
		sbase
		test expr
		body []stmt
		els  []stmt // an elif is a nested ifStmt here
	}
	assignStmt struct {
		sbase
		target expr
		value  expr
	}
	assignBlockStmt struct {
		sbase
		target expr
		filter *filterExpr // may be nil
		body   []stmt
	}
	macroStmt struct {
		sbase
		name     string
		args     []string
		defaults []expr // for the last len(defaults) args
		body     []stmt
		reads    map[string]bool // the names its body reads (caller, kwargs and varargs matter)
	}
	callBlockStmt struct {
		sbase
		call     *callExpr
		args     []string
		defaults []expr
		body     []stmt
		reads    map[string]bool
	}
	filterBlockStmt struct {
		sbase
		filter *filterExpr
		body   []stmt
	}
	withStmt struct {
		sbase
		targets []expr
		values  []expr
		body    []stmt
	}
	// scopeStmt renders its body in an inner scope ({% generation %}).
	scopeStmt struct {
		sbase
		body []stmt
	}
	breakStmt    struct{ sbase }
	continueStmt struct{ sbase }
)
