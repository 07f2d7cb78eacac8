package testenv

import (
	"context"
	"testing"
	"time"
)

// A row written on the primary before the copy and one after are both
// read on the standby; once promoted, the standby takes writes.
func TestStandby(t *testing.T) {
	t.Parallel()
	primary := StartCluster(t, ClusterOptions{})
	pconn := Connect(t, primary.DSN)
	ctx := context.Background()
	if _, err := pconn.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	standby := StartStandby(t, primary, StandbyOptions{Slot: "standby", Conf: "hot_standby_feedback = on"})

	// The primary was restarted under pconn.
	pconn = Connect(t, primary.DSN)
	if _, err := pconn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	var active bool
	if err := pconn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby'").Scan(&active); err != nil || !active {
		t.Fatalf("the standby's physical slot on the primary: active %t, err %v", active, err)
	}
	standby.waitFor(t, 30*time.Second, "row 2 on the standby", "SELECT count(*) = 2 FROM t")
	sconn := Connect(t, standby.DSN)
	if _, err := sconn.Exec(ctx, "INSERT INTO t VALUES (3)"); err == nil {
		t.Fatal("the standby took a write before its promotion")
	}

	primary.StopImmediate(t)
	standby.Promote(t)
	sconn = Connect(t, standby.DSN)
	if _, err := sconn.Exec(ctx, "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatalf("write on the promoted standby: %v", err)
	}
}
