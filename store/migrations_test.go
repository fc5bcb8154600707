package store

import (
	"regexp"
	"strconv"
	"testing"
)

// TestMigrationsAreContiguous guards against two changes claiming the same
// schema version: the upgrade table would keep only one of them.
func TestMigrationsAreContiguous(t *testing.T) {
	header := regexp.MustCompile(`^-- v(\d+) -> v(\d+): `)
	entries, err := upgradeFiles.ReadDir("upgrades")
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, e := range entries {
		b, err := upgradeFiles.ReadFile("upgrades/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m := header.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no \"-- vN -> vM: \" header", e.Name())
		}
		from, _ := strconv.Atoi(string(m[1]))
		to, _ := strconv.Atoi(string(m[2]))
		if from != next || to != from+1 {
			t.Fatalf("%s upgrades v%d -> v%d; the next migration must be v%d -> v%d", e.Name(), from, to, next, next+1)
		}
		next = to
	}
}
