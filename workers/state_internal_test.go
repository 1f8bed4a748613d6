package workers

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	k := stateSigner{key: []byte("0123456789abcdef0123456789abcdef")}
	exp := time.Date(2026, 3, 1, 9, 10, 0, 0, time.UTC)
	seen := map[string]bool{}
	for _, next := range []string{nextBind, nextScan, nextBind} {
		s := k.issue(next, exp)
		if len(s) > 64 || strings.ContainsAny(s, "+/=&#% ") {
			t.Fatalf("state %q: too long or not URL-safe", s)
		}
		if seen[s] {
			t.Fatalf("state %q issued twice", s)
		}
		seen[s] = true
		gotNext, gotExp, ok := k.verify(s)
		if !ok || gotNext != next || !gotExp.Equal(exp) {
			t.Fatalf("verify(%q)=%q, %s, %v; want %q, %s, true", s, gotNext, gotExp, ok, next, exp)
		}
		other := stateSigner{key: []byte("another key, same length, 32 by")}
		if _, _, ok := other.verify(s); ok {
			t.Fatalf("state %q verified with another key", s)
		}
	}
}

// FuzzStateVerify: whatever comes back from the browser, verify never
// panics and accepts only what issue made with the same key.
func FuzzStateVerify(f *testing.F) {
	k := stateSigner{key: []byte("0123456789abcdef0123456789abcdef")}
	good := k.issue(nextScan, time.Unix(1_800_000_000, 0))
	for _, s := range []string{good, "", ".", "...", "b.1.2.3", "x" + good[1:], good[:len(good)-1], good + "A", strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		next, _, ok := k.verify(s)
		if !ok {
			return
		}
		if next != nextBind && next != nextScan {
			t.Fatalf("verify(%q) ok with next %q", s, next)
		}
		i := strings.LastIndexByte(s, '.')
		if s[i+1:] != k.mac(s[:i]) {
			t.Fatalf("verify(%q) ok without our MAC", s)
		}
	})
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		inside  = map[string]int{}
		overlap bool
	)
	for i := range 40 {
		key := []string{"a", "b"}[i%2]
		wg.Go(func() {
			unlock := k.lock(key)
			mu.Lock()
			inside[key]++
			overlap = overlap || inside[key] > 1
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if overlap {
		t.Fatal("two holders of one key at once")
	}
	if n := len(k.m); n != 0 {
		t.Fatalf("%d entries left after every unlock", n)
	}
}
