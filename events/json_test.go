package events_test

import (
	"bytes"
	"encoding/json"
	"net/textproto"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxscan/wxscan/events"
)

func checkJSON(t *testing.T, e events.Event) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := e.AppendJSON([]byte("prefix"))
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("errors differ: AppendJSON %v, json.Marshal %v", gerr, werr)
	}
	if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant prefix%s", got, want)
	}
}

func TestAppendJSONIsJSONMarshal(t *testing.T) {
	for _, f := range []string{"text.xml", "scancode_waitmsg.xml", "location_event.xml", "location_select.xml", "unknown.xml"} {
		e, err := events.Parse("wxA", mustRead(t, f), now)
		if err != nil {
			t.Fatal(err)
		}
		e.RequestID = "not in the payload"
		checkJSON(t, e)
	}
	checkJSON(t, events.Event{})
	checkJSON(t, events.Event{ID: "\"\\<>&\b\f\n\r\t\x00\x1f\x7f", Content: "\u2028\u2029é中\xff\xfe", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))})
	checkJSON(t, events.Event{ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("a", "<xml>&</xml>", "\u2028\xff", int64(1))
	f.Fuzz(func(t *testing.T, a, b, c string, n int64) {
		checkJSON(t, events.Event{V: 1, ID: a, AppID: b, To: c, From: a, CreateTime: n, MsgType: b, Event: c, EventKey: a,
			Ticket: b, ScanType: c, ScanResult: a, Content: b, MsgID: c, Latitude: a, Longitude: b, Precision: c,
			ReceivedAt: time.Unix(n%1e10, n%1e9), XML: a + b + c})
	})
}

// Publish sets its headers without Header.Set, so their names must be in
// the canonical form Header.Get looks for.
func TestPublishHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{jetstream.MsgIDHeader, events.RequestIDHeader} {
		if got := textproto.CanonicalMIMEHeaderKey(name); got != name {
			t.Errorf("header %q is not canonical (%q)", name, got)
		}
	}
}
