package whatsapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/bots"
)

var (
	ownPN   = types.NewJID("5511900000000", types.DefaultUserServer)
	ownLID  = types.NewJID("90000000000001", types.HiddenUserServer)
	me      = own{pn: ownPN, lid: ownLID}
	ana     = types.NewJID("5511911111111", types.DefaultUserServer)
	anaLID  = types.NewJID("91111111111111", types.HiddenUserServer)
	group   = types.NewJID("120363000000000001", types.GroupServer)
	msgTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
)

// dm and groupMsg build message events the way whatsmeow delivers them:
// raw message in RawMessage, unwrapped by UnwrapRaw.
func dm(id string, m *waE2E.Message) *events.Message {
	evt := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: ana, Sender: ana, AddressingMode: types.AddressingModePN},
			ID:            id, PushName: "Ana", Timestamp: msgTime, Type: "text",
		},
		RawMessage: m,
	}
	return evt.UnwrapRaw()
}

func groupMsg(id string, sender types.JID, m *waE2E.Message) *events.Message {
	evt := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: group, Sender: sender, IsGroup: true, AddressingMode: types.AddressingModeLID},
			ID:            id, PushName: "Ana", Timestamp: msgTime,
		},
		RawMessage: m,
	}
	return evt.UnwrapRaw()
}

func mustTranslate(t *testing.T, evt *events.Message) (bots.Inbound, map[string]any) {
	t.Helper()
	in, content, drop, err := translate(evt, me)
	if err != nil || drop {
		t.Fatalf("translate: drop=%v err=%v", drop, err)
	}
	var m map[string]any
	if err := json.Unmarshal(content, &m); err != nil {
		t.Fatalf("content %s: %v", content, err)
	}
	return in, m
}

func TestTranslateKinds(t *testing.T) {
	media := func() (*string, *string, []byte, *uint64) {
		return proto.String("https://mmg.whatsapp.net/x"), proto.String("/v/t62/x"), []byte{1, 2, 3}, proto.Uint64(1234)
	}
	url, path, key, size := media()
	tests := []struct {
		name      string
		msg       *waE2E.Message
		kind      string
		text      string
		ignore    string
		mediaKind string
		key       string // a key the content must have
	}{
		{"conversation", &waE2E.Message{Conversation: proto.String("oi")}, "conversation", "oi", "", "", "conversation"},
		{"extended text", &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("see https://x.y")}}, "extendedTextMessage", "see https://x.y", "", "", "extendedTextMessage"},
		{"image caption", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("a cat"), Mimetype: proto.String("image/jpeg"), URL: url, DirectPath: path, MediaKey: key, FileLength: size}}, "imageMessage", "a cat", "", "image", "imageMessage"},
		{"video caption", &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: proto.String("a clip"), Mimetype: proto.String("video/mp4"), Seconds: proto.Uint32(7)}}, "videoMessage", "a clip", "", "video", "videoMessage"},
		{"document caption", &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: proto.String("the invoice"), FileName: proto.String("inv.pdf"), Mimetype: proto.String("application/pdf")}}}}, "documentMessage", "the invoice", "", "document", "documentMessage"},
		{"voice note", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true), Mimetype: proto.String("audio/ogg; codecs=opus"), Seconds: proto.Uint32(4), URL: url, DirectPath: path, MediaKey: key, FileLength: size}}, "audioMessage", "", "", "audio", "audioMessage"},
		{"sticker", &waE2E.Message{StickerMessage: &waE2E.StickerMessage{Mimetype: proto.String("image/webp")}}, "stickerMessage", "", "", "sticker", "stickerMessage"},
		{"location", &waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(-23.5), DegreesLongitude: proto.Float64(-46.6)}}, "locationMessage", "", "", "", "locationMessage"},
		{"contact", &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Bia"), Vcard: proto.String("BEGIN:VCARD\nEND:VCARD")}}, "contactMessage", "", "", "", "contactMessage"},
		{"view once image", &waE2E.Message{ViewOnceMessageV2: &waE2E.FutureProofMessage{Message: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("once")}}}}, "imageMessage", "once", "", "image", "imageMessage"},
		{"ephemeral text", &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{Conversation: proto.String("poof")}}}, "conversation", "poof", "", "", "conversation"},
		{"button reply", &waE2E.Message{ButtonsResponseMessage: &waE2E.ButtonsResponseMessage{Response: &waE2E.ButtonsResponseMessage_SelectedDisplayText{SelectedDisplayText: "Yes"}}}, "buttonsResponseMessage", "Yes", "", "", "buttonsResponseMessage"},
		{"reaction", &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: &waCommon.MessageKey{ID: proto.String("X")}, Text: proto.String("👍")}}, "reactionMessage", "", ignoreReaction, "", "reactionMessage"},
		{"revoke", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: &waCommon.MessageKey{ID: proto.String("X")}}}, "protocolMessage", "", ignoreRevoke, "", "protocolMessage"},
		{"edit protocol", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), EditedMessage: &waE2E.Message{Conversation: proto.String("fixed")}}}, "editedMessage", "", ignoreEdit, "", "protocolMessage"},
		{"edit wrapper", &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), EditedMessage: &waE2E.Message{Conversation: proto.String("fixed")}}}}}, "editedMessage", "", ignoreEdit, "", "protocolMessage"},
		{"poll vote", &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{PollCreationMessageKey: &waCommon.MessageKey{ID: proto.String("P")}}}, "pollUpdateMessage", "", ignorePollVote, "", "pollUpdateMessage"},
		{"poll", &waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{Name: proto.String("Lunch?")}}, "pollCreationMessage", "", ignorePoll, "", "pollCreationMessageV3"},
		{"unknown kind", &waE2E.Message{KeepInChatMessage: &waE2E.KeepInChatMessage{Key: &waCommon.MessageKey{ID: proto.String("K")}}}, "keepInChatMessage", "", ignoreUnsupported, "", "keepInChatMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, content := mustTranslate(t, dm("ID-"+tt.name, tt.msg))
			if in.MessageType != tt.kind || in.Text != tt.text || in.Ignore != tt.ignore {
				t.Fatalf("got kind %q text %q ignore %q, want %q %q %q", in.MessageType, in.Text, in.Ignore, tt.kind, tt.text, tt.ignore)
			}
			if (in.Media == nil) != (tt.mediaKind == "") || (in.Media != nil && in.Media.Kind != tt.mediaKind) {
				t.Fatalf("media = %+v, want kind %q", in.Media, tt.mediaKind)
			}
			if _, ok := content[tt.key]; !ok {
				t.Fatalf("content has no %q: %v", tt.key, content)
			}
			if in.ChatJID != ana.String() || in.SenderJID != ana.String() || in.IsGroup || in.FromMe ||
				in.PushName != "Ana" || !in.Timestamp.Equal(msgTime) || in.MessageID != "ID-"+tt.name {
				t.Fatalf("envelope = %+v", in)
			}
		})
	}
}

func TestTranslateVoiceNoteIsADownloadableReference(t *testing.T) {
	evt := dm("VOICE", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
		PTT: proto.Bool(true), Mimetype: proto.String("audio/ogg; codecs=opus"), Seconds: proto.Uint32(4),
		URL: proto.String("https://mmg.whatsapp.net/v/x.enc"), DirectPath: proto.String("/v/t62.7117-24/x.enc"),
		MediaKey: []byte{1, 2, 3}, FileSHA256: []byte{4, 5}, FileEncSHA256: []byte{6, 7}, FileLength: proto.Uint64(5120),
	}})
	in, content, _, err := translate(evt, me)
	if err != nil {
		t.Fatal(err)
	}
	want := bots.Media{Kind: "audio", Mimetype: "audio/ogg; codecs=opus", Size: 5120, Seconds: 4, Voice: true}
	if in.Media == nil || *in.Media != want {
		t.Fatalf("media = %+v", in.Media)
	}
	// The stored content is enough to download it later, in Baileys' names.
	msg, ref, err := downloadable(content)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := msg.(*waE2E.AudioMessage)
	if !ok || a.GetDirectPath() != "/v/t62.7117-24/x.enc" || string(a.GetMediaKey()) != "\x01\x02\x03" ||
		string(a.GetFileEncSHA256()) != "\x06\x07" || string(a.GetFileSHA256()) != "\x04\x05" || a.GetFileLength() != 5120 {
		t.Fatalf("rebuilt %T %v", msg, msg)
	}
	if fileName(ref) != "media.ogg" {
		t.Fatalf("file name = %q", fileName(ref))
	}
	if _, _, err := downloadable(json.RawMessage(`{"conversation":"hi"}`)); err == nil {
		t.Fatal("a text message has an attachment")
	}
}

func TestTranslateDropsSyncNoise(t *testing.T) {
	for name, m := range map[string]*waE2E.Message{
		"key share":    {ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum()}},
		"history sync": {ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum()}},
		"sender key":   {SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String("g")}},
	} {
		if _, _, drop, err := translate(dm("N", m), me); err != nil || !drop {
			t.Errorf("%s: drop=%v err=%v", name, drop, err)
		}
	}
	if _, _, drop, _ := translate(&events.Message{Info: types.MessageInfo{ID: "E"}}, me); !drop {
		t.Error("an event without a message is not dropped")
	}
}

func TestTranslateChats(t *testing.T) {
	text := &waE2E.Message{Conversation: proto.String("hello")}
	status := dm("S", text)
	status.Info.Chat = types.StatusBroadcastJID
	news := dm("N", text)
	news.Info.Chat = types.NewJID("1203630000", types.NewsletterServer)
	list := dm("B", text)
	list.Info.Chat = types.NewJID("1700000000", types.BroadcastServer)
	for evt, want := range map[*events.Message]string{status: ignoreStatus, news: ignoreNewsletter, list: ignoreBroadcast} {
		if in, _ := mustTranslate(t, evt); in.Ignore != want {
			t.Errorf("%s: ignore = %q, want %q", evt.Info.Chat, in.Ignore, want)
		}
	}

	// A LID chat is answered exactly as received.
	lid := dm("L", text)
	lid.Info.Chat, lid.Info.Sender, lid.Info.SenderAlt = anaLID, anaLID, ana
	if in, _ := mustTranslate(t, lid); in.ChatJID != anaLID.String() || in.SenderJID != anaLID.String() {
		t.Fatalf("LID chat = %+v", in)
	}

	// Our own account typing on the phone: fromMe, not ignored here (the
	// channel decides whether it is an echo).
	mine := dm("M", text)
	mine.Info.IsFromMe, mine.Info.Sender = true, ownPN
	if in, _ := mustTranslate(t, mine); !in.FromMe || in.Ignore != "" || in.ChatJID != ana.String() {
		t.Fatalf("fromMe = %+v", in)
	}
}

func TestTranslateGroupMentionsAndReplies(t *testing.T) {
	sender := types.NewJID("92222222222222", types.HiddenUserServer)
	sender.Device = 3
	mention := func(jids ...string) *waE2E.Message {
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String("@bot hi"), ContextInfo: &waE2E.ContextInfo{MentionedJID: jids},
		}}
	}
	tests := []struct {
		name    string
		msg     *waE2E.Message
		mention bool
		replies bool
		quoted  string
	}{
		{"mention by LID", mention(ownLID.String()), true, false, ""},
		{"mention by phone number", mention(ownPN.String()), true, false, ""},
		{"mention of someone else", mention(ana.String(), anaLID.String()), false, false, ""},
		{"mention with device suffix", mention(ownPN.User + ":12@s.whatsapp.net"), true, false, ""},
		{"no mention", &waE2E.Message{Conversation: proto.String("hi all")}, false, false, ""},
		{"reply to our message", &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String("yes"), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("OURS"), Participant: proto.String(ownLID.String()),
				QuotedMessage: &waE2E.Message{Conversation: proto.String("want it?")}},
		}}, false, true, "OURS"},
		{"reply to someone else", &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String("me too"), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("THEIRS"), Participant: proto.String(ana.String())},
		}}, false, false, "THEIRS"},
		{"image replying with a mention", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Caption: proto.String("@bot this"), ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{ownLID.String()}, StanzaID: proto.String("Q"), Participant: proto.String(ownPN.String())},
		}}, true, true, "Q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, content := mustTranslate(t, groupMsg("G-"+tt.name, sender, tt.msg))
			if !in.IsGroup || in.ChatJID != group.String() || in.SenderJID != sender.ToNonAD().String() {
				t.Fatalf("envelope = %+v", in)
			}
			if in.MentionsMe != tt.mention || in.RepliesToMe != tt.replies || in.QuotedID != tt.quoted {
				t.Fatalf("mentions %v replies %v quoted %q, want %v %v %q", in.MentionsMe, in.RepliesToMe, in.QuotedID, tt.mention, tt.replies, tt.quoted)
			}
			if tt.quoted != "" {
				raw, _ := json.Marshal(content)
				if !strings.Contains(string(raw), `"stanzaId":"`+tt.quoted+`"`) {
					t.Fatalf("content keeps no Evolution-style stanzaId: %s", raw)
				}
			}
		})
	}
}

func TestEvolutionJSONNames(t *testing.T) {
	for in, want := range map[string]string{
		"stanzaID": "stanzaId", "mentionedJID": "mentionedJid", "URL": "url", "fileSHA256": "fileSha256",
		"fileEncSHA256": "fileEncSha256", "JPEGThumbnail": "jpegThumbnail", "PTT": "ptt", "remoteJID": "remoteJid",
		"staticURL": "staticUrl", "senderTimestampMS": "senderTimestampMs", "mediaKey": "mediaKey",
		"conversation": "conversation", "extendedTextMessage": "extendedTextMessage", "ID": "id",
	} {
		if got := baileysKey(in); got != want {
			t.Errorf("baileysKey(%q) = %q, want %q", in, got, want)
		}
	}
	raw, err := evolutionJSON(&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text:        proto.String("hi"),
		ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("A"), MentionedJID: []string{"1@s.whatsapp.net"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"extendedTextMessage":{"contextInfo":{"mentionedJid":["1@s.whatsapp.net"],"stanzaId":"A"},"text":"hi"}}`
	if string(raw) != want {
		t.Fatalf("JSON = %s\nwant  %s", raw, want)
	}
}

// A message's time is its sender's unless that cannot be: missing, or
// far ahead of our clock, it is when the message reached the gateway.
func TestTranslateTimestamp(t *testing.T) {
	text := &waE2E.Message{Conversation: proto.String("oi")}
	tests := []struct {
		name  string
		ts    time.Time
		keeps bool
	}{
		{"sender's time", msgTime, true},
		{"a minute ahead", time.Now().Add(time.Minute), true},
		{"missing", time.Time{}, false},
		{"years ahead", time.Now().AddDate(40000, 0, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evt := dm("TS", text)
			evt.Info.Timestamp = tt.ts
			before := time.Now()
			in, _ := mustTranslate(t, evt)
			switch {
			case tt.keeps && !in.Timestamp.Equal(tt.ts):
				t.Fatalf("timestamp %v, want the sender's %v", in.Timestamp, tt.ts)
			case !tt.keeps && (in.Timestamp.Before(before) || in.Timestamp.After(time.Now())):
				t.Fatalf("timestamp %v, want the time of receipt", in.Timestamp)
			}
		})
	}
}
