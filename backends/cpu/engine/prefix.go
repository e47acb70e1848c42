package engine

import "container/list"

// prefixLRU keeps recent completed prefill states by prompt, within a byte budget.
type prefixLRU struct {
	budget, used int64
	order        *list.List // front = most recent; values are *prefillTask
	byKey        map[string]*list.Element
	hits, misses int
}

func newPrefixLRU(budget int64) *prefixLRU {
	return &prefixLRU{budget: budget, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *prefixLRU) get(key string) *prefillTask {
	if e, ok := c.byKey[key]; ok {
		c.order.MoveToFront(e)
		c.hits++
		return e.Value.(*prefillTask)
	}
	c.misses++
	return nil
}

// peek returns the state of key when it keeps at least need queries, without counting a hit or a miss.
func (c *prefixLRU) peek(key string, need int) *prefillTask {
	if e, ok := c.byKey[key]; ok && e.Value.(*prefillTask).qRows >= need {
		return e.Value.(*prefillTask)
	}
	return nil
}

// put stores a completed task, evicting the least recently used ones to stay within budget.
// A state larger than the whole budget is not kept.
func (c *prefixLRU) put(t *prefillTask) {
	if c.budget <= 0 {
		return
	}
	n := t.bytes()
	if n > c.budget {
		return
	}
	if e, ok := c.byKey[t.key]; ok {
		old := e.Value.(*prefillTask)
		if old.qRows >= t.qRows {
			c.order.MoveToFront(e)
			return
		}
		c.remove(e)
	}
	for c.used+n > c.budget && c.order.Len() > 0 {
		c.remove(c.order.Back())
	}
	c.byKey[t.key] = c.order.PushFront(t)
	c.used += n
}

func (c *prefixLRU) remove(e *list.Element) {
	t := e.Value.(*prefillTask)
	c.order.Remove(e)
	delete(c.byKey, t.key)
	c.used -= t.bytes()
}
