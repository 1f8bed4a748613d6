package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wxscan/wxscan/store"
)

func mustItems(tb testing.TB, db *store.DB, items ...store.Item) {
	tb.Helper()
	if _, _, err := db.ImportItems(items); err != nil {
		tb.Fatal(err)
	}
}

func TestImportItems(t *testing.T) {
	db := MustOpen(t)
	if n, err := db.ItemCount(); err != nil || n != 0 {
		t.Fatalf("ItemCount=%d,%v, want 0", n, err)
	}
	added, updated, err := db.ImportItems([]store.Item{
		{Code: "690001", SKU: "SKU-1", Name: "可乐 330ml", Unit: "罐"},
		{Code: "690001-old", SKU: "SKU-1", Name: "可乐 330ml"}, // one sku, two codes
		{Code: "690002", SKU: "SKU-2", Name: "雪碧"},
	})
	if err != nil || added != 3 || updated != 0 {
		t.Fatalf("import=%d,%d,%v, want 3,0,nil", added, updated, err)
	}
	added, updated, err = db.ImportItems([]store.Item{
		{Code: "690002", SKU: "SKU-3", Name: "雪碧 新"},
		{Code: "690004", SKU: "SKU-4", Name: "芬达"},
	})
	if err != nil || added != 1 || updated != 1 {
		t.Fatalf("second import=%d,%d,%v, want 1,1,nil", added, updated, err)
	}
	if n, err := db.ItemCount(); err != nil || n != 4 {
		t.Fatalf("ItemCount=%d,%v, want 4", n, err)
	}
	err = db.View(func(tx *store.Tx) error {
		if !tx.HasItems() {
			t.Fatal("HasItems=false")
		}
		it, err := tx.Item("690001")
		if err != nil {
			return err
		}
		if want := (store.Item{Code: "690001", SKU: "SKU-1", Name: "可乐 330ml", Unit: "罐"}); it != want {
			t.Fatalf("Item=%+v, want %+v", it, want)
		}
		if it, err := tx.Item("690002"); err != nil || it.SKU != "SKU-3" || it.Name != "雪碧 新" {
			t.Fatalf("updated Item=%+v,%v", it, err)
		}
		if _, err := tx.Item("nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown Item err=%v, want ErrNotFound", err)
		}
		for sku, want := range map[string]string{"SKU-1": "可乐 330ml", "SKU-2": "", "SKU-3": "雪碧 新", "SKU-": ""} {
			if got := tx.SKUName(sku); got != want {
				t.Fatalf("SKUName(%s)=%q, want %q", sku, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestImportItems_BadRowRefusesAll(t *testing.T) {
	good := store.Item{Code: "1", SKU: "S1", Name: "a"}
	for _, tt := range []struct {
		name string
		bad  store.Item
		want string
	}{
		{"empty code", store.Item{Code: " ", SKU: "S"}, "row 2: empty code"},
		{"empty sku", store.Item{Code: "2", SKU: ""}, "row 2: code \"2\": empty sku"},
		{"repeated code", store.Item{Code: "1", SKU: "S9"}, "row 2: code \"1\" repeats row 1"},
		{"long code", store.Item{Code: strings.Repeat("c", 257), SKU: "S"}, "row 2: code longer than 256"},
		{"long sku", store.Item{Code: "2", SKU: strings.Repeat("s", 65)}, "row 2: sku longer than 64"},
		{"long name", store.Item{Code: "2", SKU: "S", Name: strings.Repeat("n", 129)}, "row 2: name longer than 128"},
		{"not utf-8", store.Item{Code: "2", SKU: "S", Name: "\xff"}, "row 2: text is not UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpen(t)
			_, _, err := db.ImportItems([]store.Item{good, tt.bad, {Code: "3", SKU: "S3"}})
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want ErrInvalid with %q", err, tt.want)
			}
			if n, err := db.ItemCount(); err != nil || n != 0 {
				t.Fatalf("ItemCount after refused import=%d,%v, want 0", n, err)
			}
		})
	}
}
