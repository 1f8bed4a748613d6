package events_test

import (
	"regexp"
	"testing"

	"github.com/wxscan/wxscan/events"
)

func TestRandomHex(t *testing.T) {
	hexDigits := regexp.MustCompile(`^[0-9a-f]*$`)
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 8, 24} {
		for range 100 {
			s := events.RandomHex(n)
			if got, want := len(s), 2*n; got != want || !hexDigits.MatchString(s) {
				t.Fatalf("RandomHex(%d)=%q: len %d, want %d hex digits", n, s, got, want)
			}
			if n >= 8 && seen[s] {
				t.Fatalf("RandomHex(%d) repeated %q", n, s)
			}
			seen[s] = true
		}
	}
}
