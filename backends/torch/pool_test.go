package torch

import (
	"context"
	"testing"
	"time"
)

func TestKVPoolIsFirstComeFirstServed(t *testing.T) {
	p := newKVPool(10)
	ctx := context.Background()
	r1, err := p.acquire(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	go func() { // 8 waits for r1; 3 would fit now but must not overtake it
		r, _ := p.acquire(ctx, 8)
		order <- 8
		time.Sleep(10 * time.Millisecond)
		r()
	}()
	time.Sleep(10 * time.Millisecond)
	go func() {
		r, _ := p.acquire(ctx, 3)
		order <- 3
		r()
	}()
	time.Sleep(10 * time.Millisecond)
	select {
	case n := <-order:
		t.Fatalf("request of %d admitted while 6 of 10 are held and 8 waits first", n)
	default:
	}
	r1()
	r1() // idempotent
	if a, b := <-order, <-order; a != 8 || b != 3 {
		t.Errorf("admitted %d then %d, want 8 then 3", a, b)
	}
	time.Sleep(30 * time.Millisecond)
	if p.inUse() != 0 {
		t.Errorf("in use %d after every release", p.inUse())
	}
}

func TestKVPoolCancelledWaiterLeavesTheQueue(t *testing.T) {
	p := newKVPool(10)
	r1, _ := p.acquire(context.Background(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.acquire(ctx, 5); err == nil {
		t.Fatal("acquire past the capacity did not wait")
	}
	r1()
	r2, err := p.acquire(context.Background(), 10)
	if err != nil || p.inUse() != 10 {
		t.Fatalf("the cancelled waiter still holds its place: %v, in use %d", err, p.inUse())
	}
	r2()
}
