package events

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth bounds the nesting of a push's XML: WeChat's go three deep.
const maxDepth = 16

// Doc is one WeChat XML push read once, without building a tree: the text
// of the elements an Event and the callback need. Read it with ReadDoc; a
// Doc is immutable and safe for concurrent use.
type Doc struct {
	raw  []byte
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

// ReadDoc reads raw as one WeChat XML push. It fails with ErrInvalid when
// raw is not well-formed XML (strict: every element closed by its own end
// tag), nests elements more than 16 deep, or its root element is not <xml>.
// It keeps raw (not a copy) for the Event's XML.
func ReadDoc(raw []byte) (*Doc, error) {
	d := &Doc{raw: raw}
	if err := d.read(); err != nil {
		return nil, fmt.Errorf("events: parse xml: %w: %v", ErrInvalid, err)
	}
	return d, nil
}

// frame is one open element while reading.
type frame struct {
	name  xml.Name
	field int  // the field it fills, or -1
	open  bool // still collecting its text: no child element seen yet
}

func (d *Doc) read() error {
	dec := xml.NewDecoder(bytes.NewReader(d.raw)) // a ByteReader: no bufio copy
	dec.Strict = true
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	var (
		stack [maxDepth]frame
		depth int
		roots int // top-level elements seen; only the first is the push
		texts [numFields]strings.Builder
	)
	for {
		t, err := dec.RawToken()
		if err == io.EOF {
			if depth != 0 {
				return errors.New("unexpected end of document")
			}
			break
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if depth == maxDepth {
				return fmt.Errorf("elements nested over %d deep", maxDepth)
			}
			f := frame{name: t.Name, field: -1}
			switch {
			case depth == 0:
				roots++
				if roots == 1 && t.Name.Local != "xml" {
					return errors.New("root element is not <xml>")
				}
			case roots > 1:
			case depth == 1:
				if i, ok := rootFields[t.Name.Local]; ok && !d.has[i] {
					f.field, f.open = i, true
					d.has[i] = true
				}
			case depth == 2 && stack[1].field >= 0:
				if i, ok := childField(stack[1].field, t.Name.Local); ok && !d.has[i] {
					f.field, f.open = i, true
					d.has[i] = true
				}
			}
			if depth > 0 {
				stack[depth-1].open = false // its text ends at its first child element
			}
			stack[depth] = f
			depth++
		case xml.EndElement:
			if depth == 0 || stack[depth-1].name != t.Name {
				return fmt.Errorf("element <%s> closed by </%s>", stack[max(depth-1, 0)].name.Local, t.Name.Local)
			}
			depth--
		case xml.CharData:
			if depth > 0 {
				if f := stack[depth-1]; f.open && f.field >= 0 {
					texts[f.field].Write(t)
				}
			} else if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	if roots == 0 {
		return errors.New("no root element")
	}
	for i := range texts {
		d.text[i] = strings.TrimSpace(texts[i].String())
	}
	return nil
}

// Encrypt is the text of the <Encrypt> element, or "" when there is none:
// the ciphertext of a safe or compatible mode push.
func (d *Doc) Encrypt() string { return d.text[fEncrypt] }
