package catalog

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func TestPGLoaderReadsKeysInKeyOrder(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	for _, sql := range []string{
		`CREATE TABLE single (id int PRIMARY KEY, v text)`,
		`CREATE TABLE composite (a int, b text, c int, PRIMARY KEY (c, a))`,
		`CREATE SCHEMA "Odd Schema"`,
		`CREATE TABLE "Odd Schema"."Weird ""name""" ("Key Col" uuid PRIMARY KEY)`,
		`CREATE TABLE nokey (v text)`,
		`CREATE TABLE dropped (x int, id int PRIMARY KEY)`,
		`ALTER TABLE dropped DROP COLUMN x`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := PGLoader(cfg)(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := Keys{
		"public.single":           {"id"},
		"public.composite":        {"c", "a"},
		`Odd Schema.Weird "name"`: {"Key Col"},
		"public.dropped":          {"id"},
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
}

func TestUnknownTableRefreshesOnce(t *testing.T) {
	loads := 0
	current := Keys{"public.a": {"id"}}
	c := New(func(context.Context) (Keys, error) { loads++; return current, nil }, nil)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	if key, ok, _ := c.Key(ctx, "public", "a"); !ok || key[0] != "id" || loads != 1 {
		t.Fatalf("known table: %v %t after %d loads", key, ok, loads)
	}
	// A new table appears: the first lookup refreshes and finds it.
	current = Keys{"public.a": {"id"}, "public.b": {"x", "y"}}
	if key, ok, _ := c.Key(ctx, "public", "b"); !ok || len(key) != 2 || loads != 2 {
		t.Fatalf("new table: %v %t after %d loads", key, ok, loads)
	}
	// A table without a key refreshes once, then is known to have none.
	for i := 0; i < 3; i++ {
		if _, ok, _ := c.Key(ctx, "public", "nokey"); ok {
			t.Fatal("nokey has no primary key")
		}
	}
	if loads != 3 {
		t.Fatalf("%d loads, want 3: one refresh for the unknown table, not one per change", loads)
	}
	// A scheduled refresh forgets that, so a key added later is found.
	current = Keys{"public.nokey": {"id"}}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Key(ctx, "public", "nokey"); !ok {
		t.Fatal("key added later not found after refresh")
	}
}

func TestFailedRefreshKeepsOldKeys(t *testing.T) {
	fail := false
	c := New(func(context.Context) (Keys, error) {
		if fail {
			return nil, errors.New("db down")
		}
		return Keys{"public.a": {"id"}}, nil
	}, nil)
	ctx := context.Background()
	_ = c.Refresh(ctx)
	fail = true
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("want the loader's error")
	}
	if _, ok, _ := c.Key(ctx, "public", "a"); !ok {
		t.Fatal("old keys lost after a failed refresh")
	}
	if _, _, err := c.Key(ctx, "public", "b"); err == nil {
		t.Fatal("lookup of an unknown table must report the failed refresh")
	}
}

func TestRefreshEveryAndOnHUP(t *testing.T) {
	loads := make(chan struct{}, 10)
	c := New(func(context.Context) (Keys, error) { loads <- struct{}{}; return Keys{}, nil }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan struct{})
	done := make(chan error)
	go func() { done <- c.RefreshEvery(ctx, time.Hour, hup) }()
	hup <- struct{}{}
	select {
	case <-loads:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not refresh")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.RefreshEvery(ctx, 20*time.Millisecond, nil) }()
	for i := 0; i < 2; i++ {
		select {
		case <-loads:
		case <-time.After(5 * time.Second):
			t.Fatal("scheduled refresh did not happen")
		}
	}
}
