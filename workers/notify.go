package workers

// notifyScans tells Config.OnScans that a committed change may have
// recorded, changed or cancelled scans of stocktakes (ids; none: any).
func (s *Service) notifyScans(ids ...string) {
	if s.cfg.OnScans != nil {
		s.cfg.OnScans(ids...)
	}
}
