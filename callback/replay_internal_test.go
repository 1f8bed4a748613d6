package callback

import (
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
