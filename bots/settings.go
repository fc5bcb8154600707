package bots

import (
	"slices"

	"github.com/wagate/wagate/store"
)

// Bot types.
const (
	ChatCompletion = "chatCompletion"
	Assistant      = "assistant"
)

// Group modes: whether a bot answers in groups never, only when mentioned
// or replied to, or always.
const (
	GroupOff     = "off"
	GroupMention = "mention"
	GroupAll     = "all"
)

// GroupModes lists the accepted group modes.
var GroupModes = []string{GroupOff, GroupMention, GroupAll}

// DefaultTranscriptionError is told to a user whose voice note could not be
// transcribed, unless the settings say otherwise.
const DefaultTranscriptionError = "Sorry, I could not understand your audio message. Could you type it instead?"

// DefaultBehaviour is what an instance's settings hold until saved. It
// departs from Evolution where Evolution's defaults are defects: the bot
// does not answer the owner's own messages (listeningFromMe false), a human
// takeover holds for an hour after the operator's last message, and
// sessions idle for five hours expire.
func DefaultBehaviour() store.Behaviour {
	return store.Behaviour{
		Expire:          ptr(300),
		KeywordFinish:   ptr(""),
		DelayMessage:    ptr(1000),
		UnknownMessage:  ptr(""),
		ListeningFromMe: ptr(false),
		StopBotFromMe:   ptr(true),
		KeepOpen:        ptr(false),
		DebounceTime:    ptr(0),
		SplitMessages:   ptr(false),
		TimePerChar:     ptr(0),
		SpeechToText:    ptr(false),
		PauseMinutes:    ptr(60),
		GroupMode:       ptr(GroupMention),
	}
}

// DefaultSettings returns the settings of an instance that never saved any.
func DefaultSettings(instanceID string) *store.OpenAISettings {
	return &store.OpenAISettings{
		InstanceID:                instanceID,
		Behaviour:                 DefaultBehaviour(),
		IgnoreJids:                []string{},
		TranscriptionErrorMessage: DefaultTranscriptionError,
	}
}

// Inherit returns b with every unset field taken from base.
func Inherit(b, base store.Behaviour) store.Behaviour {
	pick(&b.Expire, base.Expire)
	pick(&b.KeywordFinish, base.KeywordFinish)
	pick(&b.DelayMessage, base.DelayMessage)
	pick(&b.UnknownMessage, base.UnknownMessage)
	pick(&b.ListeningFromMe, base.ListeningFromMe)
	pick(&b.StopBotFromMe, base.StopBotFromMe)
	pick(&b.KeepOpen, base.KeepOpen)
	pick(&b.DebounceTime, base.DebounceTime)
	pick(&b.SplitMessages, base.SplitMessages)
	pick(&b.TimePerChar, base.TimePerChar)
	pick(&b.SpeechToText, base.SpeechToText)
	pick(&b.PauseMinutes, base.PauseMinutes)
	pick(&b.GroupMode, base.GroupMode)
	return b
}

// Effective is the configuration that applies to a bot's next message.
type Effective struct {
	store.Behaviour
	CredsID    string   `json:"openaiCredsId"`
	IgnoreJids []string `json:"ignoreJids"` // the settings' list and the bot's own
}

// EffectiveFor merges bot over the instance settings, which must be
// complete (saved, or DefaultSettings).
func EffectiveFor(bot *store.Bot, settings *store.OpenAISettings) Effective {
	e := Effective{
		Behaviour: Inherit(bot.Behaviour, Inherit(settings.Behaviour, DefaultBehaviour())),
		CredsID:   bot.CredsID,
	}
	if e.CredsID == "" {
		e.CredsID = settings.CredsID
	}
	e.IgnoreJids = append(slices.Clone(settings.IgnoreJids), bot.IgnoreJids...)
	slices.Sort(e.IgnoreJids)
	e.IgnoreJids = slices.Compact(e.IgnoreJids)
	if e.IgnoreJids == nil {
		e.IgnoreJids = []string{}
	}
	return e
}

func pick[T any](dst **T, base *T) {
	if *dst == nil {
		*dst = base
	}
}

func ptr[T any](v T) *T { return &v }
