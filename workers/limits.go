package workers

import "github.com/wxscan/wxscan/store"

// Length limits, in bytes, of the fields the staff pages take (SPEC §11):
// the store's own. The workers refuse a longer value with 400 before it
// reaches the store; callback checks the pages' fields again, cheaply,
// before asking the workers.
const (
	MaxEmployeeNoLen = store.MaxEmployeeNoLen
	MaxBindCodeLen   = store.MaxBindCodeLen
	MaxLocationLen   = store.MaxLocationLen
	// MaxScannedCodeLen bounds a scanned code (after its type prefix).
	MaxScannedCodeLen = store.MaxCodeLen
	// MaxScanResultLen bounds a scan result as the page sends it: a code
	// type (such as EAN_13), a comma and the code.
	MaxScanResultLen = 64 + 1 + MaxScannedCodeLen

	// maxTokenLen bounds session tokens, OAuth codes and states (WeChat
	// allows a state of at most 128 bytes; ours are about 48).
	maxTokenLen = 128
)
