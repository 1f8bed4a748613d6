package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// etreeParse is Parse as it was before ReadDoc, with a SelectElement path
// per field: the reference that ReadDoc's one walk over the root's children
// must agree with.
func etreeParse(appid string, raw []byte, receivedAt time.Time) (Event, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = 16
	if err := doc.ReadFromBytes(raw); err != nil {
		return Event{}, fmt.Errorf("events: parse xml: %w: %v", ErrInvalid, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "xml" {
		return Event{}, fmt.Errorf("events: parse xml: %w: root element is not <xml>", ErrInvalid)
	}
	text := func(path ...string) string {
		el := root
		for _, p := range path {
			if el = el.SelectElement(p); el == nil {
				return ""
			}
		}
		return strings.TrimSpace(el.Text())
	}
	e := Event{
		V:          Version,
		AppID:      appid,
		To:         text("ToUserName"),
		From:       text("FromUserName"),
		MsgType:    text("MsgType"),
		Event:      text("Event"),
		EventKey:   text("EventKey"),
		Ticket:     text("Ticket"),
		Content:    text("Content"),
		MsgID:      text("MsgId"),
		Latitude:   text("Latitude"),
		Longitude:  text("Longitude"),
		Precision:  text("Precision"),
		ReceivedAt: receivedAt.UTC(),
		XML:        string(raw),
	}
	if e.MsgID == "" {
		e.MsgID = text("MsgID")
	}
	if e.MsgType == "location" { // a location message, not the LOCATION event
		e.Latitude, e.Longitude, e.Precision = text("Location_X"), text("Location_Y"), text("Scale")
	}
	switch {
	case root.SelectElement("ScanCodeInfo") != nil:
		e.ScanType = text("ScanCodeInfo", "ScanType")
		e.ScanResult = text("ScanCodeInfo", "ScanResult")
	case root.SelectElement("SendLocationInfo") != nil:
		e.Latitude = text("SendLocationInfo", "Location_X")
		e.Longitude = text("SendLocationInfo", "Location_Y")
		e.Precision = text("SendLocationInfo", "Scale")
	}
	ct := text("CreateTime")
	if e.To == "" || e.From == "" || e.MsgType == "" || ct == "" {
		return Event{}, fmt.Errorf("events: parse xml: %w: ToUserName, FromUserName, CreateTime and MsgType are required", ErrInvalid)
	}
	n, err := strconv.ParseInt(ct, 10, 64)
	if err != nil || n < 0 {
		return Event{}, fmt.Errorf("events: parse xml: %w: CreateTime %q is not a number", ErrInvalid, ct)
	}
	e.CreateTime = n
	e.ID = e.key()
	return e, nil
}

func checkSameAsEtree(t *testing.T, raw []byte) {
	t.Helper()
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	want, werr := etreeParse("wxA", raw, at)
	got, gerr := Parse("wxA", raw, at)
	switch {
	case gerr != nil && !errors.Is(gerr, ErrInvalid):
		t.Fatalf("error not ErrInvalid: %v", gerr)
	case werr != nil && gerr == nil:
		t.Fatalf("accepted what etree refused (%v): %q", werr, raw)
	case werr == nil && gerr != nil:
		t.Fatalf("refused what etree accepted: %v: %q", gerr, raw)
	case werr == nil && got != want:
		t.Fatalf("events differ for %q:\n got %+v\nwant %+v", raw, got, want)
	}
}

func TestReadDocAgreesWithEtree(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { checkSameAsEtree(t, raw) })
	}
	base := `<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>%s</xml>`
	for i, extra := range []string{
		`<Event>x</Event><Event>second</Event>`,
		`<Event> <!-- c --> a<![CDATA[ b ]]>c <x>no</x> d</Event>`,
		`<ScanCodeInfo><ScanType>q</ScanType></ScanCodeInfo><ScanCodeInfo><ScanResult>second</ScanResult></ScanCodeInfo>`,
		`<ScanCodeInfo><ScanResult>r</ScanResult></ScanCodeInfo><SendLocationInfo><Location_X>1</Location_X></SendLocationInfo>`,
		`<SendLocationInfo><Location_X>1</Location_X><Scale>2</Scale></SendLocationInfo><Latitude>9</Latitude>`,
		`<ScanType>top</ScanType><a><ScanCodeInfo><ScanResult>deep</ScanResult></ScanCodeInfo></a>`,
		`<w:Event xmlns:w="urn:x">ns</w:Event>`,
		`<Event a="1" b='2'>&lt;&amp;&#x41;&#66;</Event>`,
		strings.Repeat("<a>", 14) + strings.Repeat("</a>", 14),
		strings.Repeat("<a>", 15) + strings.Repeat("</a>", 15),
		`<Event>x</event>`,
		`<Encrypt> secret </Encrypt>`,
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkSameAsEtree(t, fmt.Appendf(nil, base, extra)) })
	}
	for i, raw := range []string{
		`<?xml version="1.0" encoding="GBK"?>` + fmt.Sprintf(base, ""),
		`<!DOCTYPE xml>` + fmt.Sprintf(base, ""),
		`<XML></XML>`, `<x:xml xmlns:x="u"><ToUserName>a</ToUserName></x:xml>`, `<xml>`, `</xml>`, `<xml/>`,
	} {
		t.Run("doc"+strconv.Itoa(i), func(t *testing.T) { checkSameAsEtree(t, []byte(raw)) })
	}
}

func FuzzReadDocAgreesWithEtree(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`<xml><ScanCodeInfo><ScanType>a</ScanType></ScanCodeInfo><Encrypt>e</Encrypt></xml>`))
	f.Fuzz(func(t *testing.T, raw []byte) { checkSameAsEtree(t, raw) })
}
