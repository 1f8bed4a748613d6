package admin

import (
	"cmp"
	"slices"

	"github.com/wxscan/wxscan/store"
)

// latestScans is how many of the newest scans a live page shows.
const latestScans = 20

// progress is a stocktake's counts as the list and the live page show them.
type progress struct {
	Scans     int // scans counted (not cancelled)
	Qty       int
	Codes     int // distinct codes
	Locations int // distinct locations
	People    int // distinct employees
}

// locationCount is one location's row on the live page.
type locationCount struct {
	Location string
	Scans    int
	Qty      int
}

// personCount is one person's row on the live page.
type personCount struct {
	EmployeeNo string
	Name       string
	Scans      int
	Qty        int
}

// liveView is what a stocktake's live fragment shows.
type liveView struct {
	Stocktake Stocktake
	Progress  progress
	Locations []locationCount
	People    []personCount
	Latest    []store.Scan // newest first
	Names     map[string]string
}

// liveData reads stocktake id's counts per location and per person and its
// latest scans. It reads the scans in chunks (EachScan), holding no read
// transaction between them.
func (c *Console) liveData(id string) (liveView, error) {
	st, err := c.cfg.DB.Stocktake(id)
	if err != nil {
		return liveView{}, err
	}
	v := liveView{Stocktake: stocktakeOf(st)}
	locs := map[string]*locationCount{}
	people := map[string]*personCount{}
	codes := map[string]struct{}{}
	ring := make([]store.Scan, 0, latestScans)
	next := 0
	err = c.cfg.DB.EachScan(id, func(s store.Scan) error {
		v.Progress.Scans++
		v.Progress.Qty += s.Qty
		codes[s.Code] = struct{}{}
		l := locs[s.Location]
		if l == nil {
			l = &locationCount{Location: s.Location}
			locs[s.Location] = l
		}
		l.Scans++
		l.Qty += s.Qty
		p := people[s.EmployeeNo]
		if p == nil {
			p = &personCount{EmployeeNo: s.EmployeeNo}
			people[s.EmployeeNo] = p
		}
		p.Scans++
		p.Qty += s.Qty
		if len(ring) < latestScans {
			ring = append(ring, s)
		} else {
			ring[next] = s
			next = (next + 1) % latestScans
		}
		return nil
	})
	if err != nil {
		return liveView{}, err
	}
	v.Progress.Codes, v.Progress.Locations, v.Progress.People = len(codes), len(locs), len(people)
	for _, l := range locs {
		v.Locations = append(v.Locations, *l)
	}
	slices.SortFunc(v.Locations, func(a, b locationCount) int { return cmp.Compare(a.Location, b.Location) })
	names := c.staffNames()
	for _, p := range people {
		p.Name = names[p.EmployeeNo]
		v.People = append(v.People, *p)
	}
	slices.SortFunc(v.People, func(a, b personCount) int {
		return cmp.Or(cmp.Compare(b.Scans, a.Scans), cmp.Compare(a.EmployeeNo, b.EmployeeNo))
	})
	// The ring holds the newest scans oldest first from next on.
	for i := range ring {
		v.Latest = append(v.Latest, ring[(next+len(ring)-1-i)%len(ring)])
	}
	v.Names = names
	return v, nil
}

// staffNames maps employee numbers to names (empty when the directory
// cannot be read: names are a courtesy on these pages).
func (c *Console) staffNames() map[string]string {
	list, err := c.cfg.DB.StaffList()
	names := make(map[string]string, len(list))
	if err != nil {
		c.cfg.Logger.Warn("console: read the staff directory", "err", err)
		return names
	}
	for _, s := range list {
		names[s.EmployeeNo] = s.Name
	}
	return names
}

// stocktakeRow is one line of the stocktake list.
type stocktakeRow struct {
	Stocktake
	Progress progress
}

// stocktakeRows lists every stocktake with its progress, open ones first,
// newest first within each.
func (c *Console) stocktakeRows() ([]stocktakeRow, error) {
	list, err := c.cfg.DB.Stocktakes()
	if err != nil {
		return nil, err
	}
	rows := make([]stocktakeRow, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		v, err := c.liveData(list[i].ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, stocktakeRow{Stocktake: v.Stocktake, Progress: v.Progress})
	}
	slices.SortStableFunc(rows, func(a, b stocktakeRow) int {
		return cmp.Compare(boolRank(!a.Open()), boolRank(!b.Open()))
	})
	return rows, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// varianceRow is one (location, sku) of a stocktake's variance (SPEC §9).
type varianceRow struct {
	Location   string
	SKU        string
	Name       string
	Expected   int
	Counted    int
	Difference int
}

// variance is stocktake id's variance against its book stock.
// TODO(console): switch to store.Variance once the item master lands.
func (c *Console) variance(id string) ([]varianceRow, error) {
	rows, err := c.cfg.DB.Summary(id)
	if err != nil {
		return nil, err
	}
	out := make([]varianceRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, varianceRow{Location: r.Location, SKU: r.Code, Counted: r.Qty, Difference: r.Qty})
	}
	return out, nil
}
