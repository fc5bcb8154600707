package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's configuration table in
// step with the options table.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, o := range options {
		if !strings.Contains(readme, "`"+o.env+"`") {
			t.Errorf("README.md does not document %s", o.env)
		}
		if o.flag != "" && !strings.Contains(readme, "`-"+o.flag+"`") {
			t.Errorf("README.md does not document the flag -%s", o.flag)
		}
	}
}
