package admin

import (
	"cmp"
	"slices"

	"github.com/wxscan/wxscan/store"
)

// latestScans is how many of the newest scans a live page shows.
const latestScans = 20

// progress is a stocktake's counts as the list and the live page show them
// (cancelled scans left out).
type progress struct {
	Scans     int
	Qty       int
	Codes     int // distinct codes
	Locations int // distinct locations
	People    int // distinct people
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
	Latest    []store.Scan // newest first, cancelled ones marked
	Names     map[string]string
}

// liveData reads stocktake id's counts per location and per person and its
// latest scans from the store's running aggregates (store.Progress): its
// cost grows with the locations and people, not with the scans.
func (c *Console) liveData(id string) (liveView, error) {
	p, err := c.cfg.DB.Progress(id, latestScans)
	if err != nil {
		return liveView{}, err
	}
	v := liveView{
		Stocktake: stocktakeOf(p.Stocktake),
		Progress:  progress{Scans: p.Scans, Qty: p.Qty, Codes: p.Codes, Locations: p.Locations, People: p.People},
		Latest:    p.Latest,
	}
	for _, l := range p.ByLocation {
		if l.Scans == 0 {
			continue // every scan there was cancelled
		}
		v.Locations = append(v.Locations, locationCount{Location: l.Key, Scans: l.Scans, Qty: l.Qty})
	}
	v.Names = c.staffNames()
	for _, pc := range p.ByPerson {
		if pc.Scans == 0 {
			continue
		}
		v.People = append(v.People, personCount{EmployeeNo: pc.EmployeeNo, Name: v.Names[pc.EmployeeNo], Scans: pc.Scans, Qty: pc.Qty})
	}
	slices.SortFunc(v.People, func(a, b personCount) int {
		return cmp.Or(cmp.Compare(b.Scans, a.Scans), cmp.Compare(a.EmployeeNo, b.EmployeeNo))
	})
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
		p, err := c.cfg.DB.Progress(list[i].ID, 0)
		if err != nil {
			return nil, err
		}
		rows = append(rows, stocktakeRow{Stocktake: stocktakeOf(p.Stocktake),
			Progress: progress{Scans: p.Scans, Qty: p.Qty, Codes: p.Codes, Locations: p.Locations, People: p.People}})
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
