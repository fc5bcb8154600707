package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "4242 (wagate) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parentheses", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 100 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 2 3", 0, true},
		{"no name", "7 x R", 0, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 3 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProcCPUOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Spin until the kernel has counted some processor time (it counts in
	// ticks, and a loaded machine may leave a short spin a tick short).
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := time.Now()
		for time.Since(busy) < 30*time.Millisecond {
		}
		got, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatalf("procCPU(self): %v", err)
		}
		if got > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("procCPU(self) = %v after spinning for 10s; want the time this test spun", got)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "loadgen_ab")
	if want := "postgres://u:p@127.0.0.1:5432/loadgen_ab?sslmode=disable"; err != nil || got != want {
		t.Fatalf("withDatabase = %q, %v; want %q", got, err, want)
	}
}

func TestCheckDB(t *testing.T) {
	tests := []struct {
		db string
		ok bool
	}{
		{"sqlite", true},
		{"postgres://postgres@127.0.0.1:25432/postgres", true},
		{"postgresql://localhost/postgres", true},
		{"postgres://db.example.com/postgres", false},
		{"mysql://127.0.0.1/x", false},
		{"file:/tmp/x.db", false},
	}
	for _, tt := range tests {
		if err := checkDB(tt.db); (err == nil) != tt.ok {
			t.Errorf("checkDB(%q) = %v; want ok %v", tt.db, err, tt.ok)
		}
	}
}
