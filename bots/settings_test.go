package bots

import (
	"reflect"
	"testing"

	"github.com/wagate/wagate/store"
)

func TestDefaultBehaviourIsComplete(t *testing.T) {
	v := reflect.ValueOf(DefaultBehaviour())
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			t.Errorf("default %s is unset: a bot and settings could both leave it nil", v.Type().Field(i).Name)
		}
	}
}

func TestEffectiveFor(t *testing.T) {
	settings := DefaultSettings("i")
	settings.CredsID = "settings-creds"
	settings.Behaviour.Expire = ptr(45)
	settings.IgnoreJids = []string{"@g.us", "b@s.whatsapp.net"}

	bot := &store.Bot{Behaviour: store.Behaviour{KeepOpen: ptr(true), Expire: nil, GroupMode: ptr(GroupAll)}, IgnoreJids: []string{"a@lid", "@g.us"}}
	e := EffectiveFor(bot, settings)
	if *e.Expire != 45 || !*e.KeepOpen || *e.GroupMode != GroupAll || *e.PauseMinutes != 60 || e.CredsID != "settings-creds" {
		t.Fatalf("effective = %+v", e)
	}
	if want := []string{"@g.us", "a@lid", "b@s.whatsapp.net"}; !reflect.DeepEqual(e.IgnoreJids, want) {
		t.Fatalf("ignoreJids = %v, want %v", e.IgnoreJids, want)
	}
	bot.CredsID = "bot-creds"
	if e := EffectiveFor(bot, settings); e.CredsID != "bot-creds" {
		t.Fatalf("bot credentials must win, got %q", e.CredsID)
	}
	// Settings saved with a field missing still yield a complete result.
	settings.Behaviour.TimePerChar = nil
	if e := EffectiveFor(&store.Bot{}, settings); e.TimePerChar == nil || *e.TimePerChar != 0 {
		t.Fatalf("timePerChar = %v", e.TimePerChar)
	}
}
