package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Binding states.
const (
	StateActive    = "active"
	StateSuspended = "suspended" // the user unsubscribed; subscribing again restores it
)

// Binding ties a WeChat openid to an employee. An employee has at most one
// binding and an openid at most one.
type Binding struct {
	OpenID     string    `json:"openid"`
	EmployeeNo string    `json:"employee_no"`
	Name       string    `json:"name"`
	UnionID    string    `json:"unionid,omitempty"`
	State      string    `json:"state"`
	BoundAt    time.Time `json:"bound_at"`
}

// Bind binds openid to employeeNo, who must be in the staff directory
// (ErrNotFound otherwise), and returns the active binding. Binding an
// employee again moves the binding: the old openid's binding is deleted. An
// openid bound to another employee is re-bound, freeing that employee.
// Idempotent: binding the same pair again keeps BoundAt (and UnionID when
// unionid is empty) and makes the binding active.
func (db *DB) Bind(openid, employeeNo, unionid string, now time.Time) (Binding, error) {
	var out Binding
	err := db.Update(func(tx *Tx) error {
		var err error
		out, err = tx.Bind(openid, employeeNo, unionid, now)
		return err
	})
	return out, err
}

// Bind is DB.Bind inside a transaction.
func (tx *Tx) Bind(openid, employeeNo, unionid string, now time.Time) (Binding, error) {
	if openid == "" || employeeNo == "" {
		return Binding{}, fmt.Errorf("store: bind %q to %q: empty openid or employee_no: %w", openid, employeeNo, ErrInvalid)
	}
	staff, err := tx.Staff(employeeNo)
	if err != nil {
		return Binding{}, err
	}
	bb, idx := tx.tx.Bucket(bucketBindings), tx.tx.Bucket(bucketBindingsByEmp)
	if old := string(idx.Get([]byte(employeeNo))); old != "" && old != openid {
		if err := bb.Delete([]byte(old)); err != nil {
			return Binding{}, fmt.Errorf("store: bind %s: unbind %s: %w", openid, old, err)
		}
	}
	b := Binding{OpenID: openid, EmployeeNo: employeeNo, Name: staff.Name, UnionID: unionid, State: StateActive, BoundAt: now.UTC()}
	var prev Binding
	found, err := getJSON(bb, openid, &prev)
	if err != nil {
		return Binding{}, fmt.Errorf("store: bind %s: %w", openid, err)
	}
	switch {
	case found && prev.EmployeeNo == employeeNo:
		b.BoundAt = prev.BoundAt
		if b.UnionID == "" {
			b.UnionID = prev.UnionID
		}
	case found && string(idx.Get([]byte(prev.EmployeeNo))) == openid:
		if err := idx.Delete([]byte(prev.EmployeeNo)); err != nil {
			return Binding{}, fmt.Errorf("store: bind %s: unbind %s: %w", openid, prev.EmployeeNo, err)
		}
	}
	if err := putJSON(bb, openid, b); err != nil {
		return Binding{}, fmt.Errorf("store: bind %s: %w", openid, err)
	}
	if err := idx.Put([]byte(employeeNo), []byte(openid)); err != nil {
		return Binding{}, fmt.Errorf("store: bind %s: %w", openid, err)
	}
	return b, nil
}

// BindingByOpenID returns openid's binding (in any state), or an error wrapping ErrNotFound.
func (db *DB) BindingByOpenID(openid string) (Binding, error) {
	var b Binding
	err := db.View(func(tx *Tx) error {
		var err error
		b, err = tx.BindingByOpenID(openid)
		return err
	})
	return b, err
}

// BindingByOpenID returns openid's binding (in any state), or an error
// wrapping ErrNotFound. Name is the staff directory's current name.
func (tx *Tx) BindingByOpenID(openid string) (Binding, error) {
	b, err := tx.bindingRecord(openid)
	if err != nil {
		return Binding{}, err
	}
	tx.refreshName(&b)
	return b, nil
}

// bindingRecord is openid's binding as stored, or an error wrapping ErrNotFound.
func (tx *Tx) bindingRecord(openid string) (Binding, error) {
	var b Binding
	found, err := getJSON(tx.tx.Bucket(bucketBindings), openid, &b)
	if err != nil {
		return Binding{}, fmt.Errorf("store: binding %s: %w", openid, err)
	}
	if !found || openid == "" {
		return Binding{}, fmt.Errorf("store: binding %q: %w", openid, ErrNotFound)
	}
	return b, nil
}

// BindingAndStaff returns openid's binding, as BindingByOpenID does, and
// the staff directory row of its employee, read once for both (a scan
// needs both); inDirectory is false when the employee is no longer in the
// directory (the binding then keeps the name it was bound with). Unlike
// BindingByOpenID, a staff row that cannot be read is an error.
func (tx *Tx) BindingAndStaff(openid string) (b Binding, s Staff, inDirectory bool, err error) {
	if b, err = tx.bindingRecord(openid); err != nil {
		return Binding{}, Staff{}, false, err
	}
	s, err = tx.Staff(b.EmployeeNo)
	switch {
	case err == nil:
		b.Name, inDirectory = s.Name, true
	case !errors.Is(err, ErrNotFound):
		return Binding{}, Staff{}, false, err
	}
	return b, s, inDirectory, nil
}

// refreshName takes the name from the staff directory, which may have been
// re-imported since the binding was made.
func (tx *Tx) refreshName(b *Binding) {
	if s, err := tx.Staff(b.EmployeeNo); err == nil {
		b.Name = s.Name
	}
}

// Bindings returns every binding, sorted by employee_no.
func (db *DB) Bindings() ([]Binding, error) {
	var out []Binding
	err := db.View(func(tx *Tx) error {
		bb := tx.tx.Bucket(bucketBindings)
		return tx.tx.Bucket(bucketBindingsByEmp).ForEach(func(emp, openid []byte) error {
			var b Binding
			data := bb.Get(openid)
			if data == nil {
				return nil
			}
			if err := json.Unmarshal(data, &b); err != nil {
				return fmt.Errorf("store: bindings: decode %s: %w", openid, err)
			}
			tx.refreshName(&b)
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// RemoveBinding deletes openid's binding, or returns an error wrapping ErrNotFound.
func (db *DB) RemoveBinding(openid string) error {
	return db.Update(func(tx *Tx) error {
		b, err := tx.BindingByOpenID(openid)
		if err != nil {
			return err
		}
		idx := tx.tx.Bucket(bucketBindingsByEmp)
		if string(idx.Get([]byte(b.EmployeeNo))) == openid {
			if err := idx.Delete([]byte(b.EmployeeNo)); err != nil {
				return fmt.Errorf("store: remove binding %s: %w", openid, err)
			}
		}
		if err := tx.tx.Bucket(bucketBindings).Delete([]byte(openid)); err != nil {
			return fmt.Errorf("store: remove binding %s: %w", openid, err)
		}
		return nil
	})
}

// SetBindingState sets openid's binding to StateActive or StateSuspended
// (ErrInvalid otherwise). It returns an error wrapping ErrNotFound when
// openid has no binding. Idempotent.
func (db *DB) SetBindingState(openid, state string) error {
	return db.Update(func(tx *Tx) error { return tx.SetBindingState(openid, state) })
}

// SetBindingState is DB.SetBindingState inside a transaction.
func (tx *Tx) SetBindingState(openid, state string) error {
	if state != StateActive && state != StateSuspended {
		return fmt.Errorf("store: set binding %s state %q: %w", openid, state, ErrInvalid)
	}
	bb := tx.tx.Bucket(bucketBindings)
	var b Binding
	found, err := getJSON(bb, openid, &b)
	if err != nil {
		return fmt.Errorf("store: set binding %s state: %w", openid, err)
	}
	if !found || openid == "" {
		return fmt.Errorf("store: set binding %q state: %w", openid, ErrNotFound)
	}
	if b.State == state {
		return nil
	}
	b.State = state
	if err := putJSON(bb, openid, b); err != nil {
		return fmt.Errorf("store: set binding %s state: %w", openid, err)
	}
	return nil
}
