package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
)

func TestStocktakes(t *testing.T) {
	db := MustOpen(t)
	if _, err := db.OpenStocktakeNow(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OpenStocktakeNow with none err=%v, want ErrNotFound", err)
	}

	st1, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st1, (store.Stocktake{ID: "ST0001", Name: "march", OpenedAt: t0}); !reflect.DeepEqual(got, want) {
		t.Fatalf("OpenStocktake=%+v, want %+v", got, want)
	}
	if !st1.Open() {
		t.Fatal("new stocktake not open")
	}
	if _, err := db.OpenStocktake("april", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second open err=%v, want ErrConflict", err)
	}
	now, err := db.OpenStocktakeNow()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := now.ID, st1.ID; got != want {
		t.Fatalf("open id=%s, want %s", got, want)
	}

	closed, err := db.CloseStocktake(st1.ID, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := closed.ClosedAt, t0.Add(time.Hour); !got.Equal(want) || closed.Open() {
		t.Fatalf("ClosedAt=%s, want %s", got, want)
	}
	if _, err := db.OpenStocktakeNow(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OpenStocktakeNow after close err=%v, want ErrNotFound", err)
	}

	st2, err := db.OpenStocktake("april", t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st2.ID, "ST0002"; got != want {
		t.Fatalf("second id=%s, want %s", got, want)
	}

	list, err := db.Stocktakes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(list), 2; got != want {
		t.Fatalf("stocktakes=%d, want %d", got, want)
	}
	if got, want := list[0], closed; !reflect.DeepEqual(got, want) {
		t.Fatalf("list[0]=%+v, want %+v", got, want)
	}
	if got, want := list[1], st2; !reflect.DeepEqual(got, want) {
		t.Fatalf("list[1]=%+v, want %+v", got, want)
	}
}

func TestCloseStocktake_Errors(t *testing.T) {
	db := MustOpen(t)
	st, err := db.OpenStocktake("march", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CloseStocktake(st.ID, t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, id string
		want     error
	}{
		{"closed", st.ID, store.ErrConflict},
		{"unknown", "ST9999", store.ErrNotFound},
		{"empty", "", store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.CloseStocktake(tt.id, t0); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
		})
	}
	if _, err := db.OpenStocktake(" ", t0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OpenStocktake(blank) err=%v, want ErrInvalid", err)
	}
}

func TestStocktakes_ManySortNumerically(t *testing.T) {
	db := MustOpen(t)
	for i := range 12 {
		st, err := db.OpenStocktake("s", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CloseStocktake(st.ID, t0.Add(time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.Stocktakes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := list[len(list)-1].ID, "ST0012"; got != want {
		t.Fatalf("last=%s, want %s", got, want)
	}
}
