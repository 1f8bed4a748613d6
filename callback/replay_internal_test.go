package callback

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The guard forgets a pair once its timestamp has left the window, so its
// size follows the request rate, not the process's age.
func TestReplayGuardForgets(t *testing.T) {
	g := newReplayGuard(300 * time.Second)
	t0 := time.Unix(1700000000, 0)
	for i := range 1000 {
		if !g.admit(t0.Unix(), strconv.Itoa(i), []byte("body"), t0) {
			t.Fatalf("new pair %d refused", i)
		}
	}
	if g.admit(t0.Unix(), "7", []byte("other"), t0.Add(299*time.Second)) {
		t.Fatal("same pair with another body accepted inside the window")
	}
	if !g.admit(t0.Unix(), "7", []byte("body"), t0.Add(299*time.Second)) {
		t.Fatal("same pair with the same body refused")
	}
	// Well past ts+skew: every shard sweeps on its next use.
	later := t0.Add(400 * time.Second)
	for i := range 10000 {
		g.admit(later.Unix(), "n"+strconv.Itoa(i), []byte("b"), later)
	}
	if n := g.size(); n != 10000 {
		t.Fatalf("guard holds %d pairs, want the 10000 live ones", n)
	}
}

// A pair is the timestamp and the nonce together: the same nonce with
// another timestamp is another pair.
func TestReplayGuardPairs(t *testing.T) {
	g := newReplayGuard(300 * time.Second)
	t0 := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name  string
		ts    int64
		nonce string
		body  string
		want  bool
	}{
		{"new pair", t0.Unix(), "n1", "a", true},
		{"same nonce, next second", t0.Unix() + 1, "n1", "b", true},
		{"same timestamp, other nonce", t0.Unix(), "n2", "c", true},
		{"first pair again, other body", t0.Unix(), "n1", "b", false},
		{"second pair again, other body", t0.Unix() + 1, "n1", "a", false},
		{"first pair again, same body", t0.Unix(), "n1", "a", true},
	} {
		if got := g.admit(tc.ts, tc.nonce, []byte(tc.body), t0); got != tc.want {
			t.Errorf("%s: admit=%v, want %v", tc.name, got, tc.want)
		}
	}
}

// BenchmarkReplayGuardMemory reports the heap each remembered pair holds
// (B/pair): the window holds one per plaintext request.
func BenchmarkReplayGuardMemory(b *testing.B) {
	const n = 200_000
	now := time.Unix(1700000000, 0)
	body := []byte("<xml/>")
	nonces := make([]string, n)
	for i := range nonces {
		nonces[i] = "nonce" + strconv.Itoa(i)
	}
	var perPair float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := newReplayGuard(300 * time.Second)
		for _, nonce := range nonces {
			g.admit(now.Unix(), nonce, body, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perPair = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(g)
	}
	b.ReportMetric(perPair, "B/pair")
}

func BenchmarkReplayGuard(b *testing.B) {
	g := newReplayGuard(300 * time.Second)
	now := time.Unix(1700000000, 0)
	body := []byte(`<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><MsgType><![CDATA[event]]></MsgType></xml>`)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			g.admit(now.Unix(), strconv.Itoa(i), body, now)
		}
	})
}
