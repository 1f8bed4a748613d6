package events

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// maxDepth bounds the nesting of a push's XML: WeChat's go three deep.
const maxDepth = 16

// Doc is one WeChat XML push, parsed once: the text of the elements an Event
// and the callback need. Read it with ReadDoc; a Doc is immutable and safe
// for concurrent use.
type Doc struct {
	raw  []byte
	xml  string // raw as a string: Event.XML
	text [numFields]string
	has  [numFields]bool
}

// The elements a Doc keeps: children of the <xml> root, and the children of
// the first ScanCodeInfo and SendLocationInfo. As with etree's
// SelectElement, the first element of a name counts and a namespace prefix
// is ignored.
const (
	fTo = iota
	fFrom
	fCreateTime
	fMsgType
	fEvent
	fEventKey
	fTicket
	fContent
	fMsgId
	fMsgID
	fLatitude
	fLongitude
	fPrecision
	fLocationX
	fLocationY
	fScale
	fEncrypt
	fScanCodeInfo
	fSendLocationInfo
	fScanType // in ScanCodeInfo
	fScanResult
	fSendLocationX // in SendLocationInfo
	fSendLocationY
	fSendScale
	numFields
)

var rootFields = map[string]int{
	"ToUserName": fTo, "FromUserName": fFrom, "CreateTime": fCreateTime, "MsgType": fMsgType,
	"Event": fEvent, "EventKey": fEventKey, "Ticket": fTicket, "Content": fContent,
	"MsgId": fMsgId, "MsgID": fMsgID, "Latitude": fLatitude, "Longitude": fLongitude,
	"Precision": fPrecision, "Location_X": fLocationX, "Location_Y": fLocationY, "Scale": fScale,
	"Encrypt": fEncrypt, "ScanCodeInfo": fScanCodeInfo, "SendLocationInfo": fSendLocationInfo,
}

// childField is the field of element local inside the container field c.
func childField(c int, local string) (int, bool) {
	switch {
	case c == fScanCodeInfo && local == "ScanType":
		return fScanType, true
	case c == fScanCodeInfo && local == "ScanResult":
		return fScanResult, true
	case c == fSendLocationInfo && local == "Location_X":
		return fSendLocationX, true
	case c == fSendLocationInfo && local == "Location_Y":
		return fSendLocationY, true
	case c == fSendLocationInfo && local == "Scale":
		return fSendScale, true
	}
	return 0, false
}

// ReadDoc reads raw as one WeChat XML push, with etree, once: the callback
// reads a safe or compatible mode envelope with it, and Event builds the
// canonical event from the same read. It fails with ErrInvalid when raw is
// not XML, nests elements more than 16 deep, or its root element is not
// <xml>. It keeps raw (not a copy) for the Event's XML.
func ReadDoc(raw []byte) (*Doc, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = maxDepth
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("events: parse xml: %w: %v", ErrInvalid, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "xml" {
		return nil, fmt.Errorf("events: parse xml: %w: root element is not <xml>", ErrInvalid)
	}
	d := &Doc{raw: raw, xml: string(raw)}
	d.collect(root, -1)
	return d, nil
}

// collect keeps the text of the first element of each known name among
// el's children: the root's fields (c < 0), or the fields inside the
// container field c.
func (d *Doc) collect(el *etree.Element, c int) {
	for _, child := range el.ChildElements() {
		f, ok := rootFields[child.Tag]
		if c >= 0 {
			f, ok = childField(c, child.Tag)
		}
		if !ok || d.has[f] {
			continue
		}
		d.has[f] = true
		d.text[f] = strings.TrimSpace(child.Text())
		if f == fScanCodeInfo || f == fSendLocationInfo {
			d.collect(child, f)
		}
	}
}

// Encrypt is the text of the <Encrypt> element, or "" when there is none:
// the ciphertext of a safe or compatible mode push.
func (d *Doc) Encrypt() string { return d.text[fEncrypt] }
